/**
 * Kernel records carry CLOCK_BOOTTIME nanoseconds (bpf_ktime_get_boot_ns).
 * BootClock turns them into wall-clock time, re-sampling the offset so that
 * NTP steps and suspend are followed.
 */
import { libc } from './ffi.js';

const CLOCK_REALTIME = 0;
const CLOCK_BOOTTIME = 7;

function now(clk: number): bigint {
  const ts = [0n, 0n];
  libc().clock_gettime(clk, ts);
  return BigInt(ts[0]!) * 1_000_000_000n + BigInt(ts[1]!);
}

export function bootTimeNs(): bigint {
  return now(CLOCK_BOOTTIME);
}

export class BootClock {
  private offsetNs = 0n;
  private sampledAt = 0;

  constructor(private readonly resampleMs = 30_000) {
    this.sample();
  }

  sample(): void {
    // take the pair of readings with the smallest gap of three tries
    let best: bigint | undefined;
    let bestGap = -1n;
    for (let i = 0; i < 3; i++) {
      const b0 = now(CLOCK_BOOTTIME);
      const r = now(CLOCK_REALTIME);
      const b1 = now(CLOCK_BOOTTIME);
      const gap = b1 - b0;
      if (bestGap < 0n || gap < bestGap) {
        bestGap = gap;
        best = r - (b0 + gap / 2n);
      }
    }
    this.offsetNs = best!;
    this.sampledAt = Date.now();
  }

  /** Wall-clock epoch nanoseconds of a boot-time timestamp. */
  wallNs(bootNs: bigint): bigint {
    if (Date.now() - this.sampledAt > this.resampleMs) this.sample();
    return bootNs + this.offsetNs;
  }

  /** ISO-8601 with microseconds, UTC: 2026-11-22T07:21:55.123456Z */
  iso(bootNs: bigint): string {
    const us = Number(this.wallNs(bootNs) / 1000n); // < 2^53 until year 2255
    const sec = Math.floor(us / 1e6);
    // toISOString costs about a microsecond: format each second once
    if (sec !== this.isoSec) {
      this.isoSec = sec;
      this.isoHead = new Date(sec * 1000).toISOString().slice(0, 20); // 2026-11-22T07:21:55.
    }
    const frac = us - sec * 1e6;
    return `${this.isoHead}${frac < 100000 ? String(frac).padStart(6, '0') : frac}Z`;
  }

  private isoSec = NaN;
  private isoHead = '';
}
