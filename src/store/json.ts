/**
 * JSON text built by hand where a hot path serializes known shapes (the process
 * events): the same text JSON.stringify writes, without walking an object.
 */

const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** A string as JSON.stringify writes it (no call for the common case: nothing to escape). */
export function jsonString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

/** An array of strings as JSON.stringify writes it. */
export function jsonStrings(a: readonly string[]): string {
  let out = '[';
  for (let i = 0; i < a.length; i++) out += (i ? ',' : '') + jsonString(a[i]!);
  return out + ']';
}
