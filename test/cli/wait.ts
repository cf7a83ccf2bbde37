/** For tests that run the built CLI as a process: its path, and a poll until a condition holds. */
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
