/**
 * The watch policy: a YAML file (docs/watch.md) read with positions, so a bad
 * policy is reported as file:line and the key, and `vigil watch` refuses to
 * start rather than run unwatched.
 */
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { LineCounter, isNode, parseDocument, type Document } from 'yaml';
import { z } from 'zod';

const pathPattern = z
  .string()
  .min(1)
  .refine((s) => s.startsWith('/') || s.startsWith('~/') || !s.includes('/'), 'an absolute path, a path under ~/, or a file name pattern without "/" (e.g. .env.*)');

const cidrOrHost = z
  .string()
  .min(1)
  .refine((s) => {
    const [addr, bits, extra] = s.split('/');
    if (extra !== undefined) return false;
    if (bits !== undefined) {
      const n = Number(bits);
      if (!/^\d+$/.test(bits)) return false;
      if (isIPv4(addr!)) return n <= 32;
      if (isIPv6(addr!)) return n <= 128;
      return false;
    }
    return isIPv4(s) || isIPv6(s) || /^(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/.test(s);
  }, 'an IP address, a CIDR (10.0.0.0/8) or a host name (example.com, *.example.com)');

const action = z.enum(['alert', 'ignore']);

export const WatchPolicySchema = z
  .object({
    sensitive: z
      .object({
        defaults: z.boolean().default(true).describe('keep the built-in list of sensitive paths'),
        paths: z.array(pathPattern).default([]).describe('more sensitive paths: /abs/file, /abs/dir/ (everything under it), ~/rel, or a file name pattern (.env.*)'),
        ignore: z.array(pathPattern).default([]).describe('paths never reported as sensitive (wins over the lists)'),
        action: z
          .enum(['alert', 'ignore', 'deny'])
          .default('alert')
          .describe('deny: opening a sensitive file that exists when the watch starts fails with EPERM inside the tree (BPF LSM); name patterns stay alerts'),
      })
      .strict()
      .default({ defaults: true, paths: [], ignore: [], action: 'alert' }),
    files: z
      .object({
        block: z.array(pathPattern).default([]).describe('accesses under these raise an alert (action: alert) or are refused (action: deny)'),
        allow: z.array(pathPattern).default([]).describe('when set, writes outside these raise an alert'),
        action: z
          .enum(['alert', 'deny'])
          .default('alert')
          .describe('deny: opening a file under files.block that exists when the watch starts fails with EPERM inside the tree (BPF LSM); name patterns stay alerts'),
      })
      .strict()
      .default({ block: [], allow: [], action: 'alert' }),
    network: z
      .object({
        allow: z.array(cidrOrHost).optional().describe('when set, connections to anything else raise an alert'),
        loopback: z.boolean().default(true).describe('report connections to loopback peers'),
        action: z
          .enum(['alert', 'deny'])
          .default('alert')
          .describe('deny: a connect (or an addressed send) by the tree to an inet address outside network.allow fails with EPERM (BPF LSM); loopback peers stay allowed; host names are resolved when the watch starts'),
      })
      .strict()
      .superRefine((n, ctx) => {
        if (n.action !== 'deny') return;
        (n.allow ?? []).forEach((a, i) => {
          if (a.startsWith('*.')) ctx.addIssue({ code: 'custom', path: ['allow', i], message: 'a wildcard host name cannot be enforced in the kernel (it checks addresses): list the host names or CIDRs, or use action: alert' });
        });
      })
      .default({ loopback: true, action: 'alert' }),
    shells: z
      .object({
        action: z
          .enum(['alert', 'ignore', 'deny'])
          .default('alert')
          .describe('alert: a shell started by a watched process that is not a shell; deny: every shell exec below the root fails with EPERM (BPF LSM)'),
      })
      .strict()
      .default({ action: 'alert' }),
    tls: z
      .object({
        enabled: z.boolean().default(true),
        capture_bytes: z.number().int().min(1).max(16384).default(4096),
        targets: z.array(z.string().startsWith('/')).default([]).describe('more files to hook (binaries that export SSL_write/SSL_read)'),
      })
      .strict()
      .default({ enabled: true, capture_bytes: 4096, targets: [] }),
  })
  .strict();

export type WatchPolicy = z.infer<typeof WatchPolicySchema>;

export const DEFAULT_POLICY: WatchPolicy = WatchPolicySchema.parse({});

/** A policy that cannot be used: where (file:line) and which key. */
export class PolicyError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | null,
    readonly key: string,
    readonly problem: string,
  ) {
    super(`${file}${line ? `:${line}` : ''}: ${key ? `${key}: ` : ''}${problem}`);
    this.name = 'PolicyError';
  }
}

function keyText(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

/** The line of the deepest node that exists on `path` (the key itself when the value is missing). */
function lineOf(doc: Document, lc: LineCounter, path: ReadonlyArray<PropertyKey>): number | null {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n) as unknown[], true);
    if (isNode(node) && node.range) return lc.linePos(node.range[0]).line;
  }
  return null;
}

/** Parse policy text; `file` names it in errors. */
export function parsePolicy(text: string, file: string): WatchPolicy {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line ?? lc.linePos(e.pos[0]).line;
    throw new PolicyError(file, line, '', `not valid YAML: ${e.message.split('\n')[0]}`);
  }
  const value = doc.toJS() ?? {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new PolicyError(file, lineOf(doc, lc, []), '', 'the policy must be a mapping of keys (sensitive, files, network, shells, tls)');
  const r = WatchPolicySchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    let path = issue.path;
    let problem = issue.message;
    if (issue.code === 'unrecognized_keys') {
      path = [...path, issue.keys[0]!];
      problem = `unknown key (known here: ${knownKeys(issue.path)})`;
    }
    throw new PolicyError(file, lineOf(doc, lc, path), keyText(path), problem);
  }
  return r.data;
}

function knownKeys(path: ReadonlyArray<PropertyKey>): string {
  let s: z.ZodType = WatchPolicySchema;
  for (const p of path) {
    const inner = unwrap(s);
    if (inner instanceof z.ZodObject) s = inner.shape[p as string] as z.ZodType;
  }
  const o = unwrap(s);
  return o instanceof z.ZodObject ? Object.keys(o.shape).join(', ') : '?';
}

function unwrap(s: z.ZodType): z.ZodType {
  let t: z.ZodType = s;
  while (t instanceof z.ZodDefault || t instanceof z.ZodOptional) t = t.unwrap() as z.ZodType;
  return t;
}

export function loadPolicy(file: string): WatchPolicy {
  return parsePolicy(readFileSync(file, 'utf8'), file);
}
