/** tls_data events: plaintext of OpenSSL calls (uprobes on SSL_write/SSL_read and their _ex forms). */
import { z } from 'zod';
import { ActorCommon, VigilCommon, u32 } from '../../events/schema.js';

export const TlsDataSchema = z
  .object({
    category: z.literal('tls_data'),
    ...ActorCommon,
    Direction: z.enum(['send', 'receive']).describe('send: SSL_write/SSL_write_ex (plaintext going out); receive: SSL_read/SSL_read_ex (plaintext that came in)'),
    Function: z.enum(['SSL_write', 'SSL_read', 'SSL_write_ex', 'SSL_read_ex']).describe('the OpenSSL function that returned'),
    Library: z.string().describe('the file the uprobe is attached to: a libssl, or a binary that carries OpenSSL (node)'),
    Bytes: u32.describe('plaintext bytes the call moved'),
    Data: z.string().describe('the first captured bytes of the plaintext (sensors.tls.capture_bytes at most); invalid UTF-8 bytes are shown as \\xNN and vigil.raw.Data has the exact bytes'),
    vigil: z
      .object({
        ...VigilCommon,
        ssl: z.string().describe('the SSL object\'s address in the process (hex): the calls of one TLS connection share it'),
        captured: u32.describe('bytes in Data (before text decoding)'),
        fd: z.number().int().min(0).optional().describe('the socket the call read or wrote (its first read/write/send/recv syscall inside the call): the same process\'s network_connection with this vigil.fd is the connection; absent when the call made no such syscall (a memory BIO, as node uses)'),
        fault: z.literal(true).optional().describe('the buffer could not be read at return: Data is empty'),
      })
      .strict(),
  })
  .strict()
  .describe('A process read or wrote TLS plaintext through OpenSSL. truncated ["Data"]: the call moved more than was captured.');

export const TLS_EVENT_SCHEMAS = [TlsDataSchema] as const;
export type TlsDataEvent = z.infer<typeof TlsDataSchema>;
