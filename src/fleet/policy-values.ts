/**
 * The values kept in the vigil-policy bucket, and how both sides check them.
 * Anything read from the bucket is data from the network: it is parsed with
 * bounds, validated, and refused whole when it does not fit.
 *
 *   deny.<id>  JSON {path?, sha256?, mode, comment?, added_by?, added_at?}
 *   sigma      gzip(JSON {format: 1, files: {"rel/path.yml": "yaml text", ...}, pushed_by?, pushed_at?})
 */
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { z } from 'zod';
import { RuleSet, type RuleError } from '../detection/index.js';

const MAX_DENY_BYTES = 16 * 1024;
export const MAX_SIGMA_FILES = 10_000;
export const MAX_SIGMA_BYTES = 64 * 1024 * 1024;
const MAX_RULE_FILE_BYTES = 1024 * 1024;

export const DenyValueSchema = z
  .object({
    path: z
      .string()
      .min(2)
      .max(4096)
      .refine((p) => p.startsWith('/') && !p.includes('\0'), 'an absolute path')
      .optional(),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'a sha256 digest (64 hex digits)')
      .transform((s) => s.toLowerCase())
      .optional(),
    mode: z.enum(['enforce', 'monitor']).default('enforce'),
    comment: z.string().max(512).optional(),
    added_by: z.string().max(256).optional(),
    added_at: z.string().max(64).optional(),
  })
  .strict()
  .refine((v) => v.path !== undefined || v.sha256 !== undefined, 'a path or a sha256 is needed');

export type DenyValue = z.output<typeof DenyValueSchema>;

/** Relative rule file names: no absolute paths, no '..', no hidden files, .yml/.yaml. */
const RULE_NAME = /^(?:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\/){0,8}[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\.ya?ml$/;

export const SigmaSetSchema = z
  .object({
    format: z.literal(1),
    files: z.record(z.string(), z.string().max(MAX_RULE_FILE_BYTES)),
    pushed_by: z.string().max(256).optional(),
    pushed_at: z.string().max(64).optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    const names = Object.keys(v.files);
    if (names.length > MAX_SIGMA_FILES) ctx.addIssue({ code: 'custom', path: ['files'], message: `${names.length} files (at most ${MAX_SIGMA_FILES})` });
    const bad = names.filter((n) => !RULE_NAME.test(n));
    if (bad.length) {
      ctx.addIssue({ code: 'custom', path: ['files'], message: `${JSON.stringify(bad[0]!.slice(0, 100))}${bad.length > 1 ? ` and ${bad.length - 1} more` : ''}: not a relative rule file name (letters, digits, . _ - and /; no "..", no hidden parts; .yml or .yaml)` });
    }
  });

export type SigmaSet = z.output<typeof SigmaSetSchema>;

function zodMessage(e: z.ZodError): string {
  return e.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? `${i.path.map(String).join('.')}: ` : ''}${i.message}`)
    .join('; ');
}

export function parseDenyValue(bytes: Uint8Array): DenyValue {
  if (bytes.length > MAX_DENY_BYTES) throw new Error(`value of ${bytes.length} bytes (at most ${MAX_DENY_BYTES})`);
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new Error(`not JSON: ${(e as Error).message}`);
  }
  const r = DenyValueSchema.safeParse(v);
  if (!r.success) throw new Error(zodMessage(r.error));
  return r.data;
}

export function encodeDenyValue(v: DenyValue): Uint8Array {
  return Buffer.from(JSON.stringify(v));
}

/** A stable digest of a deny value (what the agent compares to see a change). */
export function denyDigest(v: DenyValue): string {
  return createHash('sha256').update(JSON.stringify([v.path ?? null, v.sha256 ?? null, v.mode, v.comment ?? null])).digest('hex').slice(0, 16);
}

export function encodeSigmaSet(set: SigmaSet): Uint8Array {
  return gzipSync(Buffer.from(JSON.stringify(set)), { level: 9 });
}

export function decodeSigmaSet(bytes: Uint8Array): SigmaSet {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let text: string;
  try {
    text = (buf[0] === 0x1f && buf[1] === 0x8b ? gunzipSync(buf, { maxOutputLength: MAX_SIGMA_BYTES }) : buf).toString('utf8');
  } catch (e) {
    throw new Error(`not a gzip'd rule set: ${(e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`not JSON: ${(e as Error).message}`);
  }
  const r = SigmaSetSchema.safeParse(v);
  if (!r.success) throw new Error(zodMessage(r.error));
  return r.data;
}

export function sigmaDigest(files: Record<string, string>): string {
  const h = createHash('sha256');
  for (const name of Object.keys(files).sort()) h.update(name).update('\0').update(files[name]!).update('\0');
  return h.digest('hex').slice(0, 16);
}

/** Compile the set as the agent would; its errors (warnings do not refuse a set). */
export function lintSigmaSet(files: Record<string, string>): { errors: RuleError[]; warnings: RuleError[]; rules: number; active: number } {
  const rs = RuleSet.fromSources(Object.entries(files).map(([path, text]) => ({ path, text })));
  return { errors: rs.errors, warnings: rs.warnings, rules: rs.rules.length, active: rs.activeCount };
}
