/**
 * File events (Sysmon-for-Linux names; SigmaHQ's file_event, file_delete,
 * file_rename, file_change and file_access categories).
 */
import { z } from 'zod';
import { ActorCommon, VigilCommon, decimal, u32 } from '../../events/schema.js';

const FileVigil = {
  ...VigilCommon,
  operation: z.enum(['create', 'write', 'read', 'delete', 'rename', 'chmod', 'truncate']).describe('what the process did'),
  result: z.number().int().describe('the syscall result: 0 or a file descriptor on success, -errno on failure'),
  error: z.string().optional().describe('errno name when the syscall failed (e.g. EACCES)'),
  path_source: z.enum(['kernel', 'joined']).describe('kernel: path of the opened file itself, walked in the kernel (symlinks resolved); joined: the directory walked in the kernel + the name the caller gave, normalized ("." and ".." folded)'),
  dev: u32.optional().describe('kernel device number (major<<20|minor) of the file, when known'),
  ino: decimal.optional().describe('inode number, when known'),
  open_flags: z.array(z.string()).optional().describe('O_* flags of an open'),
  mode: z.string().optional().describe('octal mode: create mode of an open, new mode of a chmod'),
  old_mode: z.string().optional().describe('octal mode before a chmod, when known (fchmod)'),
  directory: z.boolean().optional().describe('the deleted entry was a directory (unlinkat AT_REMOVEDIR)'),
};

const base = { ...ActorCommon, TargetFilename: z.string().describe('absolute path of the file (as the process sees it: relative to its root)') };

export const FileEventSchema = z
  .object({
    category: z.literal('file_event'),
    ...base,
    CreationUtcTime: z.string().optional().describe('set when this open created the file'),
    vigil: z.object({ ...FileVigil, created: z.boolean().describe('the open created the file (FMODE_CREATED)') }).strict(),
  })
  .strict()
  .describe('A file was created or opened for writing (open, openat, openat2, creat).');

export const FileDeleteSchema = z
  .object({ category: z.literal('file_delete'), ...base, vigil: z.object(FileVigil).strict() })
  .strict()
  .describe('A file or directory was deleted (unlink, unlinkat).');

export const FileRenameSchema = z
  .object({
    category: z.literal('file_rename'),
    ...base,
    SourceFilename: z.string().describe('the old path'),
    vigil: z.object(FileVigil).strict(),
  })
  .strict()
  .describe('A file was renamed or moved (rename, renameat, renameat2); TargetFilename is the new path.');

export const FileChangeSchema = z
  .object({ category: z.literal('file_change'), ...base, vigil: z.object(FileVigil).strict() })
  .strict()
  .describe('A file was made executable (chmod setting an exec bit) or truncated (truncate, ftruncate).');

export const FileAccessSchema = z
  .object({ category: z.literal('file_access'), ...base, vigil: z.object(FileVigil).strict() })
  .strict()
  .describe('A file under a configured read prefix was opened read-only.');

export const FileProvenanceSchema = z
  .object({
    category: z.literal('file_provenance'),
    ...base,
    vigil: z
      .object({
        ...VigilCommon,
        dev: u32.describe('kernel device number (major<<20|minor) of the file'),
        ino: decimal.describe('inode number'),
        depth: u32.describe('0: written by a network-touched process; n: derived from a marked file n times'),
        origin: z.enum(['network', 'derived']).describe('network: the writer talked to a remote peer; derived: it only read a marked file'),
        created: z.boolean().describe('the open created the file'),
        inherited: z.literal(true).optional().describe('the writer inherited its network taint from its parent at fork'),
        remote_address: z.string().optional().describe('the last remote peer of the writer (connect or accept)'),
        remote_port: u32.optional(),
        network_time: z.string().optional().describe('ISO-8601 UTC of that connection'),
        derived_from: z
          .object({ dev: u32, ino: decimal, depth: u32 })
          .strict()
          .optional()
          .describe('the marked file the writer read last (its inode)'),
      })
      .strict(),
  })
  .strict()
  .describe('A process that touched the network (or read a marked file) opened a regular file for writing: the kernel marked the file (docs/provenance.md).');

export const FILE_EVENT_SCHEMAS = [FileEventSchema, FileDeleteSchema, FileRenameSchema, FileChangeSchema, FileAccessSchema, FileProvenanceSchema] as const;

export type FileProvenanceEvent = z.infer<typeof FileProvenanceSchema>;

export type FileEvent = z.infer<(typeof FILE_EVENT_SCHEMAS)[number]>;
