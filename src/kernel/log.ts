/**
 * libbpf's log, captured. libbpf prints through a single global callback; we
 * install it once and collect lines while a binding call runs, so that errors
 * carry the verifier output of exactly the call that failed.
 */
import { koffi, libbpf, libc, PrintFn } from './ffi.js';

export type LibbpfLevel = 'warn' | 'info' | 'debug';
const LEVELS: LibbpfLevel[] = ['warn', 'info', 'debug'];

type Listener = (level: LibbpfLevel, line: string) => void;

let installed = false;
let capture: string[] | null = null;
let listener: Listener | null = null;
// libbpf prints a refused program's whole verifier log in one call (its buffer is up to
// 16 MiB) and the reason is at the end: format into a buffer that large (allocated
// without filling, so only the pages a message touches become resident).
const SCRATCH_BYTES = 16 << 20;
let scratchBuf: Buffer | undefined;
// keep a reference: the registered callback must outlive every libbpf call
let registered: unknown;

function install(): void {
  if (installed) return;
  installed = true;
  registered = koffi.register((level: number, fmt: string, args: unknown) => {
    const scratch = (scratchBuf ??= Buffer.allocUnsafeSlow(SCRATCH_BYTES));
    const n = libc().vsnprintf(scratch, scratch.length, fmt, args) as number;
    const text = scratch.toString('utf8', 0, Math.max(0, Math.min(n, scratch.length - 1)));
    const lvl = LEVELS[level] ?? 'debug';
    if (capture) capture.push(text);
    listener?.(lvl, text);
    return 0;
  }, koffi.pointer(PrintFn));
  libbpf().libbpf_set_print(registered);
}

/** Receive libbpf log lines (e.g. to forward warnings to the agent's logger). */
export function onLibbpfLog(fn: Listener | null): void {
  install();
  listener = fn;
}

/**
 * Run `fn` while collecting libbpf's output. Returns the result and the log.
 * Nested captures share the outer buffer.
 */
export function withLog<T>(fn: () => T): { result: T; log: string } {
  install();
  if (capture) return { result: fn(), log: '' };
  capture = [];
  try {
    const result = fn();
    return { result, log: capture.join('') };
  } finally {
    capture = null;
  }
}

/** Keep the last `maxBytes` of a log: verifier output is long and its end says why. */
export function tailLog(log: string, maxBytes = 8000): string {
  if (log.length <= maxBytes) return log;
  return `…(${log.length - maxBytes} bytes elided)…\n${log.slice(-maxBytes)}`;
}
