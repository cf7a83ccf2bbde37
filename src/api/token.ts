/**
 * The local API's bearer token: 32 random bytes (base64url) in a file only
 * root reads (0600, its directory 0700), made by `vigil run` when missing and
 * kept across restarts (a console URL stays valid). Compared in constant time.
 */
import { chmodSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, writeSync, constants } from 'node:fs';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { dirname } from 'node:path';

export interface TokenFile {
  token: string;
  created: boolean;
  /** the file was readable by others and was made 0600 */
  tightened: boolean;
}

const TOKEN_RE = /^[A-Za-z0-9_-]{32,256}$/;

/** Read the token file, or create it (0600, exclusive) with a fresh token. */
export function ensureToken(path: string): TokenFile {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const token = randomBytes(32).toString('base64url');
    let fd: number;
    try {
      fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      return ensureToken(path); // made by another process meanwhile
    }
    try {
      writeSync(fd, `${token}\n`);
    } finally {
      closeSync(fd);
    }
    return { token, created: true, tightened: false };
  }
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  let tightened = false;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.mode & 0o077) {
      chmodSync(path, 0o600);
      tightened = true;
    }
  } finally {
    closeSync(fd);
  }
  const token = readFileSync(path, 'utf8').trim();
  if (!TOKEN_RE.test(token)) throw new Error('the token file does not hold a token (32-256 characters of A-Z a-z 0-9 _ -): remove it and `vigil run` makes a new one');
  return { token, created: false, tightened };
}

/** Read an existing token (vigil console-url). */
export function readToken(path: string): string {
  const token = readFileSync(path, 'utf8').trim();
  if (!TOKEN_RE.test(token)) throw new Error('not a token file');
  return token;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** `Authorization: Bearer <token>` against the token, in constant time (digests of equal length). */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = header ? /^Bearer ([^\s]+)$/.exec(header) : null;
  const given = digest(m ? m[1]! : '');
  return timingSafeEqual(given, digest(token)) && !!m;
}
