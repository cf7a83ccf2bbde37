/**
 * Where syslog messages go: a local Unix datagram socket (/dev/log), UDP (one
 * message per datagram, RFC 5426) or TCP with octet-counted framing
 * (RFC 6587 §3.4.1: "<bytes> <message>", so no byte of the message can end
 * it early). Each is a Transport of the shared delivery queue
 * (src/sinks/delivery.ts), which retries a failed batch with backoff.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, isIP, type Socket } from 'node:net';
import { UnixDatagramSender, UnixSendError } from '../../kernel/unix-dgram.js';
import { DeliveryError, type Batch, type Transport } from '../delivery.js';

export interface HostPort {
  host: string;
  port: number;
}

/** "127.0.0.1:514", "[::1]:514", "logs.example:6514" → host and port; null when malformed */
export function parseHostPort(s: string): HostPort | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(s);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1] ?? m[2]!, port };
}

/**
 * Datagram transports remember how far into a batch they got, so a retry
 * resends only what was not sent (no duplicates from a half-sent batch).
 */
abstract class DatagramTransport implements Transport {
  private progress = { key: '', sent: 0 };

  async send(batch: Batch): Promise<void> {
    if (this.progress.key !== batch.key) this.progress = { key: batch.key, sent: 0 };
    for (let i = this.progress.sent; i < batch.items.length; i++) {
      await this.one(Buffer.from(batch.items[i]!));
      this.progress.sent = i + 1;
    }
  }

  protected abstract one(buf: Buffer): Promise<void>;
  abstract close(): void | Promise<void>;
}

/** /dev/log and the like (see src/kernel/unix-dgram.ts). */
export class UnixTransport extends DatagramTransport {
  private readonly sock: UnixDatagramSender;

  constructor(path: string) {
    super();
    this.sock = new UnixDatagramSender(path);
  }

  protected one(buf: Buffer): Promise<void> {
    try {
      this.sock.send(buf);
      return Promise.resolve();
    } catch (e) {
      // EMSGSIZE: larger than the socket takes, resending cannot help
      if (e instanceof UnixSendError) return Promise.reject(new DeliveryError(e.message, e.code !== 'EMSGSIZE'));
      return Promise.reject(e);
    }
  }

  close(): void {
    this.sock.close();
  }
}

export class UdpTransport extends DatagramTransport {
  private readonly sock: UdpSocket;

  constructor(private readonly to: HostPort) {
    super();
    this.sock = createSocket(isIP(to.host) === 6 ? 'udp6' : 'udp4');
    this.sock.on('error', () => {}); // reported through send callbacks
    this.sock.unref();
  }

  protected one(buf: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.sock.send(buf, this.to.port, this.to.host, (err) => {
        if (!err) return resolve();
        const code = (err as NodeJS.ErrnoException).code;
        reject(new DeliveryError(`udp ${this.to.host}:${this.to.port}: ${code ?? err.message}`, code !== 'EMSGSIZE'));
      });
    });
  }

  close(): Promise<void> {
    return new Promise((r) => {
      try {
        this.sock.close(() => r());
      } catch {
        r();
      }
    });
  }
}

/**
 * TCP, octet-counted. One connection, opened when needed and again after it
 * broke; a batch is one write. A write that the kernel took may still be lost
 * if the connection breaks before the peer reads it (plain TCP syslog has no
 * acknowledgements); a write that failed is retried whole.
 */
export class TcpTransport implements Transport {
  private sock: Socket | null = null;
  private connecting: Promise<Socket> | null = null;

  constructor(
    private readonly to: HostPort,
    private readonly timeoutMs: number,
  ) {}

  private where(): string {
    return `tcp ${this.to.host}:${this.to.port}`;
  }

  private connect(): Promise<Socket> {
    if (this.sock && !this.sock.destroyed && this.sock.writable) return Promise.resolve(this.sock);
    this.connecting ??= new Promise<Socket>((resolve, reject) => {
      const s = connect({ host: this.to.host, port: this.to.port });
      s.setNoDelay(true);
      s.unref();
      const timer = setTimeout(() => s.destroy(new Error(`connect timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        this.sock = s;
        resolve(s);
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(new DeliveryError(`${this.where()}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, true));
      });
      s.on('close', () => {
        if (this.sock === s) this.sock = null;
      });
      // a later error (reset while idle, a failed write) closes the socket; the next send reconnects
      s.on('error', () => {});
      // a syslog receiver sends nothing: read and ignore, so that a close is seen
      s.on('data', () => {});
    }).finally(() => (this.connecting = null));
    return this.connecting;
  }

  async send(batch: Batch): Promise<void> {
    const s = await this.connect();
    const frames = batch.items.map((m) => {
      const b = Buffer.from(m);
      return Buffer.concat([Buffer.from(`${b.length} `), b]);
    });
    const buf = frames.length === 1 ? frames[0]! : Buffer.concat(frames);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        s.destroy();
        reject(new DeliveryError(`${this.where()}: write timed out after ${this.timeoutMs} ms`, true));
      }, this.timeoutMs);
      s.write(buf, (err) => {
        clearTimeout(timer);
        if (err) {
          s.destroy();
          reject(new DeliveryError(`${this.where()}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, true));
        } else resolve();
      });
    });
  }

  close(): Promise<void> {
    const s = this.sock;
    this.sock = null;
    if (!s || s.destroyed) return Promise.resolve();
    return new Promise((r) => {
      s.once('close', () => r());
      s.end();
      setTimeout(() => {
        s.destroy();
        r();
      }, 1000).unref();
    });
  }
}
