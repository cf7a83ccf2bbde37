/**
 * vigil's event model, defined once in zod: the TypeScript types, the runtime
 * validation used by tests, and the published JSON Schema
 * (docs/schema/event.schema.json, written by `npm run gen:schema`; a test fails
 * when it is stale) all come from here.
 *
 * Field names follow Sysmon for Linux (what Sigma rules use); vigil's own fields
 * live under `vigil`.
 */
import { z } from 'zod';

export const SCHEMA_VERSION = 1;

const u32 = z.number().int().min(0).max(4294967295);
const decimal = z.string().regex(/^\d+$/);

export const AncestorSchema = z
  .object({
    ProcessId: u32.describe('process id of the ancestor'),
    Image: z.string().describe('its executable path ("" when unknown)'),
    CommandLine: z.string().describe('its argv joined by spaces ("" when unknown)'),
  })
  .strict();

const VigilCommon = {
  schema: z.literal(SCHEMA_VERSION).describe('event schema version'),
  seq: z.number().int().positive().describe('sequence number of the event in this agent run'),
  boot_ns: decimal.describe('CLOCK_BOOTTIME of the kernel record in ns (decimal string: exceeds 2^53)'),
  tid: u32.describe('thread id that did it'),
  uid: u32,
  gid: u32,
  euid: u32,
  session_id: u32.describe('audit session id (4294967295 when unset)'),
  comm: z.string().describe('kernel task name (16 bytes at most)'),
  cgroup_id: decimal.describe('cgroup v2 id'),
  start_ns: decimal.describe('process start, CLOCK_BOOTTIME ns'),
  truncated: z.array(z.string()).optional().describe('fields whose kernel copy was cut short, e.g. ["CommandLine"]; "CommandLine:unreadable" when argv pages could not be read'),
  raw: z
    .record(z.string(), z.union([z.string(), z.array(z.string())]))
    .optional()
    .describe('base64 of the exact bytes of text fields that were not valid UTF-8 (argv: one entry per argument); the text fields show such bytes as \\xNN'),
};

const Common = {
  timestamp: z.string().describe('ISO-8601 UTC with microseconds'),
  Hostname: z.string(),
  ProcessId: u32.describe('process id (tgid)'),
  ProcessGuid: z.string().describe('boot-unique process id in GUID form'),
  Image: z.string().describe('executable path, resolved in the kernel (symlinks followed)'),
  CommandLine: z.string().describe('argv joined by single spaces, as Sysmon for Linux does'),
  User: z.string().describe('user name of the real uid (the uid as text when unknown)'),
  ParentProcessId: u32,
  ParentImage: z.string(),
  Ancestors: z.array(AncestorSchema).describe('parent first, then its parent, up to process_table.max_depth'),
};

export const ProcessCreationSchema = z
  .object({
    category: z.literal('process_creation'),
    ...Common,
    CurrentDirectory: z.string(),
    LogonId: u32.describe('audit login uid (4294967295 when unset)'),
    ParentProcessGuid: z.string(),
    ParentCommandLine: z.string(),
    vigil: z
      .object({
        ...VigilCommon,
        argv: z.array(z.string()).describe('the arguments, each decoded like CommandLine'),
        argc: u32.describe('argument count the kernel saw (argv may hold fewer when truncated)'),
        exe_dev: u32.describe('kernel device number (major<<20|minor) of the executable'),
        exe_ino: decimal.describe('inode number of the executable'),
      })
      .strict(),
  })
  .strict()
  .describe('A process executed a new program (execve).');

export const ProcessTerminationSchema = z
  .object({
    category: z.literal('process_termination'),
    ...Common,
    vigil: z
      .object({
        ...VigilCommon,
        exit_status: z.number().int().describe('wait status: exit code in bits 8-15, signal in bits 0-6'),
        exit_code: z.number().int().min(0).max(255),
        signal: z.number().int().min(0).max(127),
      })
      .strict(),
  })
  .strict()
  .describe('The last thread of a process exited.');

export const EventSchema = z
  .discriminatedUnion('category', [ProcessCreationSchema, ProcessTerminationSchema])
  .describe('A vigil event (one JSON object per line in the audit log).');

export type Ancestor = z.infer<typeof AncestorSchema>;
export type ProcessCreationEvent = z.infer<typeof ProcessCreationSchema>;
export type ProcessTerminationEvent = z.infer<typeof ProcessTerminationSchema>;
export type VigilProcessFields = Omit<ProcessCreationEvent['vigil'], 'argv' | 'argc' | 'exe_dev' | 'exe_ino'>;

export type EventCategory = 'process_creation' | 'process_termination' | 'file_event' | 'network_connection' | 'exec_decision';

/** The published JSON Schema of events. */
export function eventJsonSchema(): Record<string, unknown> {
  return { $id: 'https://vigil.dev/schema/event.schema.json', title: 'vigil event', ...z.toJSONSchema(EventSchema) };
}
