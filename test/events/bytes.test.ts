import { describe, expect, it } from 'vitest';
import { cString, decodeBytes, escapeInvalidUtf8, splitArgv } from '../../src/events/bytes.js';

describe('kernel bytes to text', () => {
  it('passes valid UTF-8 through, with no raw copy', () => {
    expect(decodeBytes(Buffer.from('héllo ✓ 😀'))).toEqual({ text: 'héllo ✓ 😀' });
  });

  it('escapes invalid bytes and keeps the exact bytes in base64', () => {
    const b = Buffer.from([0x61, 0xff, 0x62, 0xc3]);
    const d = decodeBytes(b);
    expect(d.text).toBe('a\\xffb\\xc3');
    expect(Buffer.from(d.raw!, 'base64')).toEqual(b);
  });

  it('rejects overlongs and surrogates like the WHATWG decoder', () => {
    expect(escapeInvalidUtf8(Buffer.from([0xc0, 0xaf]))).toBe('\\xc0\\xaf');
    expect(escapeInvalidUtf8(Buffer.from([0xed, 0xa0, 0x80]))).toBe('\\xed\\xa0\\x80');
    expect(escapeInvalidUtf8(Buffer.from([0xe2, 0x9c, 0x93, 0x80]))).toBe('✓\\x80');
  });

  it('splits argv on NUL and keeps a truncated last piece', () => {
    expect(splitArgv(Buffer.from('a\0bb\0c')).map((x) => Buffer.from(x).toString())).toEqual(['a', 'bb', 'c']);
    expect(splitArgv(Buffer.from('a\0\0b\0')).map((x) => Buffer.from(x).toString())).toEqual(['a', '', 'b']);
    expect(splitArgv(Buffer.alloc(0))).toEqual([]);
  });

  it('reads C strings up to the NUL', () => {
    expect(cString(Buffer.from('bash\0\0junk'))).toBe('bash');
    expect(cString(Buffer.from('sixteen-chars-xx'))).toBe('sixteen-chars-xx');
  });
});
