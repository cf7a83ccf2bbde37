/**
 * TypeScript side of bpf/tls/tls.h. Checked against the object's BTF at load
 * (BpfSensor) and by the layout tests, enums included.
 */
import { f, type Layout } from '../../events/layouts.js';

/** enum vigil_tls_record_type */
export const TlsRecordType = { TLS_DATA: 48 } as const;

/** enum vigil_tls_func */
export const TlsFunc = { SSL_WRITE: 1, SSL_READ: 2, SSL_WRITE_EX: 3, SSL_READ_EX: 4 } as const;

/** enum vigil_tls_flags */
export const TlsFlags = { TRUNCATED: 1 << 0, FAULT: 1 << 1 } as const;

/** enum vigil_tls_stat (vigil_stats slots) */
export const TlsStat = { TLS_EVENTS: 16, TLS_TRUNCATED: 17, TLS_PENDING_LOST: 18, TLS_FAULT: 19 } as const;

export const TLS_DATA_MAX = 16384;

export const VigilTlsData = {
  name: 'vigil_tls_data',
  size: 128,
  fields: {
    hdr: f(0, 16, 'vigil_hdr'),
    task: f(16, 72, 'vigil_task'),
    ssl: f(88, 8),
    func: f(96, 4),
    flags: f(100, 4),
    len: f(104, 4),
    data_len: f(108, 4),
    cookie: f(112, 8),
    fd: f(120, 4),
    _pad0: f(124, 4),
    data: f(128, 0),
  },
} as const satisfies Layout;

export const VigilTlsSettings = {
  name: 'vigil_tls_settings',
  size: 8,
  fields: { self_tgid: f(0, 4), capture: f(4, 4) },
} as const satisfies Layout;

/** Enums checked against the BTF: [C enum name, C prefix, values]. */
export const TLS_ENUMS: Array<[string, string, Record<string, number>]> = [
  ['vigil_tls_record_type', 'VIGIL_REC_', TlsRecordType],
  ['vigil_tls_func', 'VIGIL_TLS_', TlsFunc],
  ['vigil_tls_flags', 'VIGIL_TF_', TlsFlags],
  ['vigil_tls_stat', 'VIGIL_STAT_', TlsStat],
];
