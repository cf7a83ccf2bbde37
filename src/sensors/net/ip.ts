/**
 * Text forms of the addresses in network records: dotted IPv4, RFC 5952 IPv6
 * (lower case, the longest run of two or more zero groups shortened to ::).
 * An IPv6 socket talking IPv4 (::ffff:a.b.c.d) is shown as the IPv4 address,
 * so one host has one spelling whichever socket family reached it.
 */
import { AF_INET, AF_INET6 } from './layouts.js';

export function formatIpv4(b: Uint8Array, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

export function formatIpv6(b: Uint8Array, off = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[off + 2 * i]! << 8) | b[off + 2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** True for ::ffff:a.b.c.d */
export function isV4Mapped(b: Uint8Array, off = 0): boolean {
  for (let i = 0; i < 10; i++) if (b[off + i] !== 0) return false;
  return b[off + 10] === 0xff && b[off + 11] === 0xff;
}

export interface IpText {
  ip: string;
  v6: boolean;
}

/** The address of a record field (16 bytes) in the given family. */
export function formatAddr(family: number, b: Uint8Array): IpText {
  if (family === AF_INET) return { ip: formatIpv4(b), v6: false };
  if (family === AF_INET6) {
    if (isV4Mapped(b)) return { ip: formatIpv4(b, 12), v6: false };
    return { ip: formatIpv6(b), v6: true };
  }
  return { ip: '', v6: false };
}

/** The unspecified address of a family ("0.0.0.0" or "::"). */
export function unspecified(family: number): IpText {
  return family === AF_INET6 ? { ip: '::', v6: true } : { ip: '0.0.0.0', v6: false };
}
