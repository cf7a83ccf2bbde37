/**
 * vigil's event model, defined once in zod: the shared building blocks and the
 * process events. Each sensor defines its own events from these blocks; the
 * registry (src/sensors/index.ts) joins them into EventSchema and the published
 * JSON Schema (docs/schema/event.schema.json, `npm run gen:schema`; a test fails
 * when it is stale).
 *
 * Field names follow Sysmon for Linux (what Sigma rules use); vigil's own fields
 * live under `vigil`.
 */
import { z } from 'zod';

export const SCHEMA_VERSION = 1;

export const u32 = z.number().int().min(0).max(4294967295);
export const decimal = z.string().regex(/^\d+$/);

export const AncestorSchema = z
  .object({
    ProcessId: u32.describe('process id of the ancestor'),
    Image: z.string().describe('its executable path ("" when unknown; "[comm]", the kernel task name, when only the kernel named it)'),
    CommandLine: z.string().describe('its argv joined by spaces ("" when unknown), at most events.ancestors.max_command_line characters'),
    truncated: z.literal(true).optional().describe('the command line was cut to events.ancestors.max_command_line characters'),
  })
  .strict();

/** vigil.* fields of every event about a task (spread into a sensor's `vigil` object). */
export const VigilCommon = {
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
  truncated: z
    .array(z.string())
    .optional()
    .describe(
      'fields whose kernel copy was cut short, e.g. ["CommandLine"]; "CommandLine:unreadable" when argv pages could not be read',
    ),
  raw: z
    .record(z.string(), z.union([z.string(), z.array(z.string())]))
    .optional()
    .describe('base64 of the exact bytes of text fields that were not valid UTF-8 (argv: one entry per argument); the text fields show such bytes as \\xNN'),
};

/** Who did it: the fields every file and network event carries (Sysmon names). */
export const ActorCommon = {
  timestamp: z.string().describe('ISO-8601 UTC with microseconds'),
  Hostname: z.string(),
  ProcessId: u32.describe('process id (tgid)'),
  ProcessGuid: z.string().describe('boot-unique process id in GUID form (the process_creation event of the same ProcessGuid has its command line and lineage)'),
  Image: z.string().describe('executable path of the process; "[comm]" (the kernel task name in brackets) when vigil has not seen it exec'),
  User: z.string().describe('user name of the real uid (the uid as text when unknown)'),
};

export const ProcessCreationSchema = z
  .object({
    category: z.literal('process_creation'),
    timestamp: z.string().describe('ISO-8601 UTC with microseconds'),
    Hostname: z.string(),
    ProcessId: u32.describe('process id (tgid)'),
    ProcessGuid: z.string().describe('boot-unique process id in GUID form'),
    Image: z.string().describe('executable path, resolved in the kernel (symlinks followed)'),
    CommandLine: z.string().describe('argv joined by single spaces, as Sysmon for Linux does'),
    CurrentDirectory: z.string(),
    User: z.string().describe('user name of the real uid (the uid as text when unknown)'),
    LogonId: u32.describe('audit login uid (4294967295 when unset)'),
    ParentProcessId: u32,
    ParentProcessGuid: z.string(),
    ParentImage: z.string(),
    ParentCommandLine: z.string().describe('in full (not cut like the Ancestors\' command lines)'),
    Ancestors: z
      .array(AncestorSchema)
      .describe(
        'parent first, then its parent, at most events.ancestors.max_depth entries (default 2; vigil.ancestors_truncated when older ones were left out), each CommandLine cut to events.ancestors.max_command_line characters (default 32; the entry then has truncated: true; ParentCommandLine is whole). The SQLite store keeps every process once and `vigil events` rebuilds the whole lineage',
      ),
    vigil: z
      .object({
        ...VigilCommon,
        argv: z.array(z.string()).describe('the arguments, each decoded like CommandLine'),
        ancestors_truncated: z.literal(true).optional().describe('Ancestors stops at events.ancestors.max_depth: older ancestors were left out (the store has them)'),
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
    timestamp: z.string().describe('ISO-8601 UTC with microseconds'),
    Hostname: z.string(),
    ProcessId: u32.describe('process id (tgid)'),
    ProcessGuid: z.string().describe('boot-unique process id in GUID form: the process_creation event of the same ProcessGuid has its command line and lineage'),
    Image: z.string().describe('executable path ("" when vigil never saw the process)'),
    User: z.string().describe('user name of the real uid (the uid as text when unknown)'),
    vigil: z
      .object({
        schema: VigilCommon.schema,
        seq: VigilCommon.seq,
        boot_ns: VigilCommon.boot_ns,
        tid: u32.optional().describe('the thread that exited last, when it is not the main thread (ProcessId)'),
        comm: VigilCommon.comm.optional().describe('the kernel task name, when vigil never saw the process (Image is "")'),
        exit_status: z.number().int().describe('wait status: exit code in bits 8-15, signal in bits 0-6'),
        exit_code: z.number().int().min(0).max(255),
        signal: z.number().int().min(0).max(127),
        truncated: z.array(z.literal('Image')).optional().describe('["Image"]: the executable\'s path was cut in the kernel (its text starts with "…")'),
        raw: z.object({ Image: z.string() }).strict().optional().describe('base64 of the exact bytes of an Image that is not valid UTF-8'),
      })
      .strict(),
  })
  .strict()
  .describe('The last thread of a process exited: the fields of Sysmon\'s ProcessTerminate and the exit status. The process_creation event of the same ProcessGuid has its command line, lineage and task fields.');

export type Ancestor = z.infer<typeof AncestorSchema>;
export type ProcessCreationEvent = z.infer<typeof ProcessCreationSchema>;
export type ProcessTerminationEvent = z.infer<typeof ProcessTerminationSchema>;
export type VigilProcessFields = Omit<ProcessCreationEvent['vigil'], 'argv' | 'argc' | 'exe_dev' | 'exe_ino'>;

/**
 * An exec guard decision (src/enforcement): not from a sensor, so the registry
 * adds it to EventSchema next to the sensors' events (AGENT_EVENT_SCHEMAS).
 * Sysmon's FileBlockExecutable shape: the process that tried to execute
 * (ProcessId, ProcessGuid, Image, User), the file it tried (TargetFilename);
 * the rule and the decision under `vigil`.
 */
export const ExecGuardSchema = z
  .object({
    category: z.literal('exec_guard'),
    ...ActorCommon,
    Image: z.string().describe('the program of the process that called execve (its image before the exec); "[comm]" when vigil has not seen it exec'),
    ParentProcessId: u32,
    TargetFilename: z.string().describe('the file the process tried to execute, as the kernel resolved it'),
    Ancestors: z
      .array(AncestorSchema)
      .describe('parent first, at most events.ancestors.max_depth entries from the agent\'s process table; without it (vigil deny events), the kernel\'s own record: Image "[comm]", CommandLine ""'),
    vigil: z
      .object({
        ...VigilCommon,
        action: z.enum(['exec_blocked', 'would_block']).describe('exec_blocked: the exec (mapping, open) failed with EPERM; would_block: allowed (monitor mode, an exempt process, or a script read by an interpreter while enforcement.loader_guard is off)'),
        backend: z.enum(['lsm', 'fanotify']).describe('what decided: lsm (the BPF LSM guard\'s programs) or fanotify (a permission event answered by the agent\'s worker thread)'),
        hook: z.enum(['bprm_check_security', 'mmap_file', 'file_mprotect', 'file_open']).optional().describe('lsm only: where the kernel decided: bprm_check_security (execve), mmap_file or file_mprotect (an executable mapping: a library, LD_PRELOAD, a program run as `ld.so FILE`), file_open (a file read by an interpreter: `sh SCRIPT`)'),
        report_only: z.boolean().optional().describe('lsm file_open: the rule would refuse, but scripts read by interpreters are only reported (enforcement.loader_guard false)'),
        perm: z.enum(['exec', 'open']).optional().describe('fanotify only: open when the file was opened rather than executed (FAN_OPEN_PERM: the dynamic loader run as a program, LD_PRELOAD, a script read by its interpreter); absent for an exec'),
        rule: z
          .object({
            id: z.number().int().min(0).describe('the deny rule (vigil deny list); 0 for provenance (no rule: the file is marked)'),
            match: z.enum(['inode', 'path', 'sha256', 'provenance']).describe('what matched: the inode, the path or the content; provenance: the file is marked (docs/provenance.md) and no allow rule matched it'),
            mode: z.string().describe('the rule\'s mode in the kernel: enforce or monitor; for provenance the policy: enforce, monitor or soak'),
            kind: z.enum(['path', 'sha256']).optional().describe('from the rule store, when the rule is still there'),
            path: z.string().nullable().optional(),
            sha256: z.string().nullable().optional(),
            comment: z.string().nullable().optional(),
          })
          .strict(),
        dev: u32.describe('kernel device number (major<<20|minor) of the file'),
        ino: decimal.describe('inode number of the file'),
        exempt: z.boolean().describe('allowed because it is PID 1 or vigil itself'),
        global_monitor: z.boolean().describe('allowed because the global mode is monitor (vigil deny mode)'),
        origin: z.record(z.string(), z.unknown()).optional().describe('provenance: the marked file\'s origin record (docs/provenance.md, version 1) from the store, when it has one'),
        learned: z.array(z.number().int().min(1)).optional().describe('provenance soak: the ids of the pending allow rules this exec produced or matched (vigil allow review)'),
      })
      .strict(),
  })
  .strict()
  .describe('The exec guard decided on an execve, an executable mapping of a file, or a file read by an interpreter: blocked it (vigil.action exec_blocked) or would have (would_block).');

export type ExecGuardEvent = z.infer<typeof ExecGuardSchema>;

/**
 * Tamper protection of origin records (docs/provenance.md TAMPERING): a process
 * that is not vigil tried to set, rewrite or remove one of vigil's extended
 * attributes (trusted.vigil.*) and got EPERM from the BPF LSM hook.
 */
export const ProvenanceTamperSchema = z
  .object({
    category: z.literal('provenance_tamper'),
    ...ActorCommon,
    TargetFilename: z.string().describe('the file, when vigil knows its path (the store\'s mark of that inode); "" when not'),
    vigil: z
      .object({
        ...VigilCommon,
        action: z.enum(['xattr_set_refused', 'xattr_remove_refused']).describe('what was refused with EPERM: setxattr (set or rewrite) or removexattr'),
        attribute: z.string().describe('the attribute\'s name (trusted.vigil.origin; cut at 31 bytes)'),
        dev: u32.describe('kernel device number (major<<20|minor) of the file'),
        ino: decimal.describe('inode number of the file'),
        owner: u32.describe('the file\'s owner (uid)'),
      })
      .strict(),
  })
  .strict()
  .describe('A process that is not vigil tried to change or remove a file\'s origin record and was refused (EPERM).');

export type ProvenanceTamperEvent = z.infer<typeof ProvenanceTamperSchema>;

/** Events the agent emits that do not come from a sensor (the registry adds them to EventSchema). */
export const AGENT_EVENT_SCHEMAS = [ExecGuardSchema, ProvenanceTamperSchema] as const;

export type EventCategory = 'process_creation' | 'process_termination' | 'file_event' | 'network_connection' | 'dns_query' | 'exec_guard' | 'provenance_tamper';

/** The process event schemas (the exec sensor's; the registry joins every sensor's into EventSchema). */
export const PROCESS_EVENT_SCHEMAS = [ProcessCreationSchema, ProcessTerminationSchema] as const;
