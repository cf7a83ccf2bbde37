/**
 * Kernel strings are bytes. Valid UTF-8 becomes a plain string; other bytes are
 * kept recoverable: the text shows each invalid byte as \xNN, and the exact
 * bytes travel along in base64 (see docs/events.md, "Non-UTF-8 data").
 */
import { isUtf8 } from 'node:buffer';

export interface DecodedText {
  text: string;
  /** base64 of the original bytes, present only when they are not valid UTF-8 */
  raw?: string;
}

export function decodeBytes(b: Uint8Array): DecodedText {
  if (isUtf8(b)) return { text: Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8') };
  return { text: escapeInvalidUtf8(b), raw: Buffer.from(b).toString('base64') };
}

/**
 * A path the kernel cut (too deep or too long: its head is missing, its tail is
 * exact) starts with "…", so it is never taken for a real path.
 */
export const CUT_MARK = '\u2026';
export function markCut(text: string): string {
  return `${CUT_MARK}${text}`;
}

/** Decode UTF-8, writing each byte that is not part of a valid sequence as \xNN. */
export function escapeInvalidUtf8(b: Uint8Array): string {
  let out = '';
  let i = 0;
  let start = 0;
  const flush = (end: number) => {
    if (end > start) out += Buffer.from(b.subarray(start, end)).toString('utf8');
  };
  while (i < b.length) {
    const c = b[i]!;
    let n = 0;
    if (c < 0x80) n = 1;
    else if (c >= 0xc2 && c <= 0xdf) n = 2;
    else if (c >= 0xe0 && c <= 0xef) n = 3;
    else if (c >= 0xf0 && c <= 0xf4) n = 4;
    let ok = n > 0 && i + n <= b.length;
    for (let k = 1; ok && k < n; k++) {
      const cc = b[i + k]!;
      if ((cc & 0xc0) !== 0x80) ok = false;
      // overlongs and surrogates (same checks as the WHATWG decoder)
      if (k === 1) {
        if (c === 0xe0 && cc < 0xa0) ok = false;
        if (c === 0xed && cc > 0x9f) ok = false;
        if (c === 0xf0 && cc < 0x90) ok = false;
        if (c === 0xf4 && cc > 0x8f) ok = false;
      }
    }
    if (ok) {
      i += n;
      continue;
    }
    flush(i);
    out += `\\x${c.toString(16).padStart(2, '0')}`;
    i++;
    start = i;
  }
  flush(i);
  return out;
}

/** Split NUL-separated argv bytes; a missing final NUL (truncation) keeps the last piece. */
export function splitArgv(b: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0) {
      out.push(b.subarray(start, i));
      start = i + 1;
    }
  }
  if (start < b.length) out.push(b.subarray(start));
  return out;
}

/** C string in a fixed array (comm): up to the first NUL. */
export function cString(b: Uint8Array): string {
  const end = b.indexOf(0);
  return decodeBytes(end < 0 ? b : b.subarray(0, end)).text;
}
