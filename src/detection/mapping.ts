/**
 * Logsource and field mapping: which vigil event category a rule runs on, and where a
 * Sigma field name lives in a vigil event.
 *
 * vigil events carry Sysmon-for-Linux field names at top level, so the default field
 * mapping is the identity. A mapping file (YAML or JSON) can rename fields globally or
 * per category, using dotted paths into nested objects (e.g. `vigil.argv`), and add
 * logsource routes:
 *
 *   fields:
 *     Hostname: vigil.host
 *   category_fields:
 *     process_creation:
 *       CommandLine: vigil.cmdline
 *   logsources:
 *     - { product: linux, service: sysmon, category: process_creation, vigil_category: process_creation }
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { VIGIL_CATEGORIES, type LogSource, type VigilCategory } from './types.js';

const LogsourceRoute = z.object({
  product: z.string().optional(),
  category: z.string().optional(),
  service: z.string().optional(),
  vigil_category: z.enum(VIGIL_CATEGORIES),
});

const MappingFile = z
  .object({
    fields: z.record(z.string(), z.string()).optional(),
    category_fields: z.record(z.enum(VIGIL_CATEGORIES), z.record(z.string(), z.string())).optional(),
    logsources: z.array(LogsourceRoute).optional(),
  })
  .strict();

export type FieldMappingConfig = z.infer<typeof MappingFile>;

/** Fields vigil's events carry, per category (used to warn about rules that can never match). */
export const KNOWN_FIELDS: Record<VigilCategory, string[]> = {
  process_creation: [
    'Image', 'CommandLine', 'ProcessId', 'ParentProcessId', 'ParentImage', 'ParentCommandLine', 'User',
    'LogonId', 'CurrentDirectory', 'ProcessGuid', 'ParentProcessGuid', 'Ancestors', 'OriginalFileName',
    'ParentUser', 'IntegrityLevel', 'Hashes', 'timestamp', 'category',
  ],
  process_termination: ['Image', 'ProcessId', 'ProcessGuid', 'User', 'timestamp', 'category'],
  file_event: ['TargetFilename', 'Image', 'ProcessId', 'ProcessGuid', 'User', 'CreationUtcTime', 'timestamp', 'category'],
  network_connection: [
    'DestinationIp', 'DestinationPort', 'DestinationHostname', 'Initiated', 'SourceIp', 'SourcePort',
    'SourceHostname', 'Protocol', 'Image', 'ProcessId', 'ProcessGuid', 'User', 'DestinationIsIpv6',
    'SourceIsIpv6', 'DestinationPortName', 'timestamp', 'category',
  ],
  dns_query: ['QueryName', 'QueryStatus', 'QueryResults', 'Image', 'ProcessId', 'ProcessGuid', 'User', 'timestamp', 'category'],
};

export class FieldMapping {
  constructor(private readonly cfg: FieldMappingConfig = {}) {}

  static load(path: string): FieldMapping {
    const text = readFileSync(path, 'utf8');
    const raw: unknown = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    const r = MappingFile.safeParse(raw ?? {});
    if (!r.success) {
      const first = r.error.issues[0];
      throw new Error(`${path}: invalid field mapping: ${first ? `${first.path.join('.') || '(root)'}: ${first.message}` : r.error.message}`);
    }
    return new FieldMapping(r.data);
  }

  /** Event path (dotted) for a Sigma field in a category. */
  field(category: VigilCategory, sigmaField: string): string {
    return this.cfg.category_fields?.[category]?.[sigmaField] ?? this.cfg.fields?.[sigmaField] ?? sigmaField;
  }

  /** The vigil categories a rule's logsource routes to, or a reason why none. */
  route(ls: LogSource): { categories: VigilCategory[] } | { reason: string } {
    const desc = `logsource ${[ls.product && `product: ${ls.product}`, ls.category && `category: ${ls.category}`, ls.service && `service: ${ls.service}`].filter(Boolean).join(', ') || '(empty)'}`;
    for (const r of this.cfg.logsources ?? []) {
      if ((r.product ?? undefined) !== undefined && r.product?.toLowerCase() !== ls.product) continue;
      if ((r.category ?? undefined) !== undefined && r.category?.toLowerCase() !== ls.category) continue;
      if ((r.service ?? undefined) !== undefined && r.service?.toLowerCase() !== ls.service) continue;
      if (r.service === undefined && ls.service) continue;
      return { categories: [r.vigil_category] };
    }
    if (ls.product && ls.product !== 'linux') return { reason: `no vigil event source (${desc}: vigil runs on Linux)` };
    if (ls.service) return { reason: `no vigil event source (${desc})` };
    if (!ls.category) return { reason: `no vigil event source (${desc}: no category)` };
    if ((VIGIL_CATEGORIES as readonly string[]).includes(ls.category)) return { categories: [ls.category as VigilCategory] };
    return { reason: `no vigil event source (${desc})` };
  }
}

/** Compile a dotted event path into a getter. Exact top-level keys win over paths. */
export function makeGetter(path: string): (ev: Record<string, unknown>) => unknown {
  if (!path.includes('.')) return (ev) => ev[path];
  const parts = path.split('.');
  return (ev) => {
    const direct = ev[path];
    if (direct !== undefined) return direct;
    let cur: unknown = ev;
    for (const p of parts) {
      if (cur === null || typeof cur !== 'object') return undefined;
      cur = (cur as Record<string, unknown>)[p];
    }
    return cur;
  };
}
