/** For tests that run the built CLI as a process: its path, and a poll until a condition holds. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const VIGIL = fileURLToPath(new URL('../../bin/vigil', import.meta.url));

/** Resolve once `pred()` is true (checked every 50 ms); reject with "timed out" after `ms`. */
export function waitFor(pred: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const t = setInterval(() => {
      if (pred()) {
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
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, any>);
}
