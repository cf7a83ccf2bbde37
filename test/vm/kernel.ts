/** The running kernel's version, for VM tests whose expectations depend on it. */
import { release } from 'node:os';

const [major, minor] = release().split('.').map(Number) as [number, number];

/** The running kernel is Linux `a`.`b` or later. */
export function kernelAtLeast(a: number, b: number): boolean {
  return major > a || (major === a && minor >= b);
}
