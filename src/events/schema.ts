/**
 * vigil's event model. Field names follow Sysmon for Linux (what Sigma rules
 * use); vigil's own fields live under `vigil`. The JSON Schema that documents
 * these is docs/schema/event.schema.json; test/events/schema.test.ts keeps the
 * two in step.
 */
import type { Ancestor } from './process-table.js';

export type EventCategory = 'process_creation' | 'process_termination' | 'file_event' | 'network_connection' | 'exec_decision';

export const SCHEMA_VERSION = 1;

export interface VigilProcessFields {
  /** event schema version */
  schema: number;
  /** sequence number of the event in this agent run */
  seq: number;
  /** CLOCK_BOOTTIME of the kernel record, decimal nanoseconds (string: exceeds 2^53) */
  boot_ns: string;
  tid: number;
  uid: number;
  gid: number;
  euid: number;
  session_id: number;
  comm: string;
  cgroup_id: string;
  /** process start (CLOCK_BOOTTIME ns, decimal) */
  start_ns: string;
  /** names of fields whose kernel copy was cut short, e.g. ["CommandLine"] */
  truncated?: string[];
  /** base64 of the exact bytes of text fields that were not valid UTF-8 */
  raw?: Record<string, string | string[]>;
}

export interface ProcessCreationEvent {
  category: 'process_creation';
  timestamp: string;
  Hostname: string;
  ProcessId: number;
  ProcessGuid: string;
  Image: string;
  CommandLine: string;
  CurrentDirectory: string;
  User: string;
  LogonId: number;
  ParentProcessId: number;
  ParentProcessGuid: string;
  ParentImage: string;
  ParentCommandLine: string;
  Ancestors: Ancestor[];
  vigil: VigilProcessFields & {
    argv: string[];
    argc: number;
    exe_dev: number;
    exe_ino: string;
  };
}

export interface ProcessTerminationEvent {
  category: 'process_termination';
  timestamp: string;
  Hostname: string;
  ProcessId: number;
  ProcessGuid: string;
  Image: string;
  CommandLine: string;
  User: string;
  ParentProcessId: number;
  ParentImage: string;
  Ancestors: Ancestor[];
  vigil: VigilProcessFields & {
    /** wait status: exit code in bits 8-15, signal in bits 0-6 */
    exit_status: number;
    exit_code: number;
    signal: number;
  };
}

export type VigilEvent = ProcessCreationEvent | ProcessTerminationEvent | (Record<string, unknown> & { category: EventCategory; timestamp: string });
