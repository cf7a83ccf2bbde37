/** For tests that run the built CLI as a process: its path, and a poll until a condition holds. */
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

export const VIGIL = fileURLToPath(new URL('../../bin/vigil', import.meta.url));

/** Resolve once `pred()` is true (checked every 50 ms); reject with "timed out" after `ms`, or with what `pred()` threw. */
export function waitFor(pred: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const t = setInterval(() => {
      let ok: boolean;
      try {
        ok = pred();
      } catch (e) {
        clearInterval(t);
        reject(e as Error);
        return;
      }
      if (ok) {
        clearInterval(t);
        resolve();
      } else if (Date.now() > end) {
        clearInterval(t);
        reject(new Error('timed out'));
      }
    }, 50);
  });
}

/**
 * The JSON records of a JSONL file another process is still appending to:
 * only complete lines (up to the last newline) are records yet, so a line
 * caught part-way through its write is left for the next poll. [] when the
 * file does not exist yet.
 */
export function jsonLines(file: string): Array<Record<string, any>> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return completeLines(text).map((l) => JSON.parse(l) as Record<string, any>);
}

/**
 * The complete lines of output collected so far from a process that is still
 * writing (its 'data' chunks end anywhere, also inside a line): up to the last
 * newline, empty lines left out.
 */
export function completeLines(text: string): string[] {
  return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter(Boolean);
}

/**
 * The first line a process writes to `stream` (without its newline); rejects if
 * the stream ends first. A 'data' chunk is not a line: it may hold part of one.
 */
export function firstLine(stream: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer | string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      stream.off('data', onData);
      stream.off('end', onEnd);
      resolve(buf.slice(0, nl));
    };
    const onEnd = () => reject(new Error(`the stream ended before a whole line: ${JSON.stringify(buf)}`));
    stream.on('data', onData);
    stream.once('end', onEnd);
  });
}
