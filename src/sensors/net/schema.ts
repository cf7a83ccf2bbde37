/**
 * Events of the network sensor (zod: types, validation and the published JSON
 * Schema). Field names follow Sysmon for Linux's NetworkConnect (event 3) and
 * Sysmon's DnsQuery (event 22), which Sigma's network_connection and dns_query
 * rules use; vigil's own fields live under `vigil`.
 */
import { z } from 'zod';
import { ActorCommon, VigilCommon, u32 } from '../../events/schema.js';

const port = z.number().int().min(0).max(65535);

export const NetworkConnectionSchema = z
  .object({
    category: z.literal('network_connection'),
    ...ActorCommon,
    Initiated: z.boolean().describe('true: this process connected out (connect); false: it accepted a connection, bound or listened'),
    Protocol: z.enum(['tcp', 'udp']).describe('tcp for stream sockets, udp for datagram sockets'),
    SourceIsIpv6: z.boolean(),
    SourceIp: z.string().describe('connect: this end (after the kernel chose it; "0.0.0.0"/"::" when the connect failed before); accept: the peer; bind/listen: the unspecified address'),
    SourcePort: port.describe('0 when unknown (bind, listen, a connect that failed before a port was chosen)'),
    DestinationIsIpv6: z.boolean(),
    DestinationIp: z.string().describe('connect: the address connected to; accept: this end; bind/listen: the address bound. IPv4 reached over an IPv6 socket is shown as IPv4'),
    DestinationHostname: z
      .string()
      .optional()
      .describe('connect: the name this process (else another process) last resolved to DestinationIp over plaintext DNS; absent when none was seen'),
    DestinationPort: port,
    vigil: z
      .object({
        ...VigilCommon,
        operation: z.enum(['connect', 'accept', 'bind', 'listen']),
        result: z.number().int().describe('0, or -errno of a failed call (a non-blocking connect in progress is -115, EINPROGRESS: initiated)'),
        errno: z.string().optional().describe('name of the error when result < 0, e.g. ECONNREFUSED, EINPROGRESS'),
        family: z.enum(['inet', 'inet6']).describe('address family of the socket'),
        ip_protocol: u32.describe('the socket\'s IP protocol number (6 TCP, 17 UDP, 136 UDP-Lite, 262 MPTCP)'),
        fd: z.number().int().describe('file descriptor of the socket (accept: of the new connection)'),
        hostname_source: z.enum(['process', 'host']).optional().describe('DestinationHostname came from this process\'s own lookup or another process\'s'),
      })
      .strict(),
  })
  .strict()
  .describe('A process connected, accepted a connection, bound or listened on a TCP or UDP socket (IPv4 or IPv6).');

export const DnsAnswerSchema = z
  .object({
    name: z.string(),
    type: z.string().describe('record type: A, AAAA, CNAME, ... or TYPEn'),
    ttl: u32,
    data: z.string().describe('A/AAAA: the address; CNAME/NS/PTR: the name; other types: ""'),
  })
  .strict();

export const DnsQuerySchema = z
  .object({
    category: z.literal('dns_query'),
    ...ActorCommon,
    QueryName: z.string().describe('the name asked for, in DNS presentation format (bytes other than printable ASCII as \\DDD)'),
    QueryStatus: z.string().describe('"0" answered; 9000 + the DNS response code otherwise ("9003" NXDOMAIN, "9002" SERVFAIL); "1460" no answer seen'),
    QueryResults: z.string().describe('answers as Sysmon writes them: "type:  5 alias;" for a CNAME, "::ffff:a.b.c.d;" for A, the address for AAAA; "-" when none'),
    vigil: z
      .object({
        ...VigilCommon,
        query_type: z.string().describe('A, AAAA, ... or TYPEn'),
        query_id: z.number().int().min(0).max(65535),
        rcode: z.string().describe('NOERROR, NXDOMAIN, SERVFAIL, ...; NO_RESPONSE when no answer was seen'),
        answers: z.array(DnsAnswerSchema),
        server_ip: z.string().describe('the name server'),
        server_port: port,
        protocol: z.enum(['udp', 'tcp']),
        response: z.boolean().describe('an answer was seen (false: the query timed out or its answer was not captured)'),
        query_seen: z.boolean().describe('the query itself was seen (false: only the answer was)'),
      })
      .strict(),
  })
  .strict()
  .describe('A process resolved a name over plaintext DNS (port 53): the query and its answer, one event per query (A and AAAA are two).');

export type NetworkConnectionEvent = z.infer<typeof NetworkConnectionSchema>;
export type DnsQueryEvent = z.infer<typeof DnsQuerySchema>;

export const NET_EVENT_SCHEMAS = [NetworkConnectionSchema, DnsQuerySchema] as const;
