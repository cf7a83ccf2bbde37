import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('the test run temporary root', () => {
  it('puts this run’s temporary directories under one directory removed when the run ends', () => {
    const d = mkdtempSync(join(tmpdir(), 'probe-'));
    expect(basename(dirname(d))).toMatch(/^vigil-test-/);
  });
});
