/**
 * The origin record vigil keeps on a marked file (docs/provenance.md), as the
 * extended attribute `trusted.vigil.origin`: UTF-8 JSON, one object, version 1.
 * Reading never throws on what the file holds: a record that is not ours
 * (garbage), cut (truncated), of another version, or with wrong fields comes
 * back as a problem with a one-line reason.
 */
import { z } from 'zod';

export const ORIGIN_XATTR = 'trusted.vigil.origin';
export const ORIGIN_VERSION = 1;
/** Records larger than this are not written (nor read: ERANGE reads as truncated). */
export const ORIGIN_MAX_BYTES = 8192;

const Remote = z
  .object({
    address: z.string().max(64),
    port: z.number().int().min(0).max(65535),
    host: z.string().max(255).optional(),
    time: z.string().optional(),
  })
  .strict();

const DerivedFrom = z
  .object({
    path: z.string().max(4096),
    dev: z.number().int().min(0),
    ino: z.string().regex(/^\d+$/),
  })
  .strict();

export const OriginRecord = z
  .object({
    v: z.literal(ORIGIN_VERSION),
    kind: z.enum(['network', 'derived', 'manual']),
    time: z.string().describe('ISO-8601 UTC wall-clock time of the write (from the kernel record)'),
    path: z.string().max(4096).describe('the landing path: where the file was written'),
    exe: z.string().max(4096).describe('the writer\'s executable path ("" when unknown)'),
    comm: z.string().max(16),
    pid: z.number().int().min(0),
    uid: z.number().int().min(0),
    host: z.string().max(255).describe('the machine that marked it'),
    depth: z.number().int().min(0).max(1000),
    remote: Remote.optional().describe('the writer\'s last remote peer (network marks; derived marks keep their root\'s)'),
    derived_from: DerivedFrom.optional().describe('the marked file the writer read last'),
  })
  .strict();
export type OriginRecord = z.infer<typeof OriginRecord>;

export type OriginProblem = 'garbage' | 'truncated' | 'version' | 'invalid';

export type ParsedOrigin = { ok: true; record: OriginRecord } | { ok: false; problem: OriginProblem; detail: string };

export function encodeOrigin(r: OriginRecord): Buffer {
  const b = Buffer.from(JSON.stringify(OriginRecord.parse(r)), 'utf8');
  if (b.length > ORIGIN_MAX_BYTES) throw new Error(`origin record of ${b.length} bytes exceeds ${ORIGIN_MAX_BYTES}`);
  return b;
}

export function parseOrigin(bytes: Uint8Array): ParsedOrigin {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { ok: false, problem: 'garbage', detail: `${bytes.length} bytes that are not UTF-8 text` };
  }
  if (!text.trimStart().startsWith('{')) return { ok: false, problem: 'garbage', detail: `${bytes.length} bytes that are not a JSON object` };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    // JSON that stops mid-way: a cut record (a short write, a copy tool that kept a prefix)
    const at = /at position (\d+)/.exec(msg);
    if (/end of JSON input|Unterminated string/.test(msg) || (at && Number(at[1]) >= text.trimEnd().length)) {
      return { ok: false, problem: 'truncated', detail: `the JSON ends after ${bytes.length} bytes` };
    }
    return { ok: false, problem: 'garbage', detail: `not JSON (${msg.slice(0, 80)})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, problem: 'garbage', detail: 'not a JSON object' };
  const v = (value as Record<string, unknown>).v;
  if (v !== ORIGIN_VERSION) {
    return { ok: false, problem: 'version', detail: `record version ${JSON.stringify(v)?.slice(0, 20) ?? 'missing'}: this vigil reads version ${ORIGIN_VERSION}` };
  }
  const r = OriginRecord.safeParse(value);
  if (!r.success) {
    const i = r.error.issues[0]!;
    return { ok: false, problem: 'invalid', detail: `field ${i.path.join('.') || '(record)'}: ${i.message}` };
  }
  return { ok: true, record: r.data };
}
