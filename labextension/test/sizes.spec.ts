import { describe, expect, it } from 'vitest';

import { formatBytes } from '../src/sizes';

describe('formatBytes', () => {
  it('writes bytes below a KiB as they are', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(812)).toBe('812 B');
    expect(formatBytes(1023)).toBe('1023 B');
  });

  it('uses binary units with one decimal below 10 and none above', () => {
    expect(formatBytes(1024)).toBe('1 KiB');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(512 * 2 ** 20)).toBe('512 MiB');
    expect(formatBytes(312.4 * 2 ** 20)).toBe('312 MiB');
    expect(formatBytes(2 ** 30)).toBe('1 GiB');
    expect(formatBytes(3.5 * 2 ** 30)).toBe('3.5 GiB');
    expect(formatBytes(9.96 * 2 ** 30)).toBe('10 GiB');
    expect(formatBytes(5 * 2 ** 40)).toBe('5 TiB');
  });

  it('carries a value that rounds up to 1024 into the next unit', () => {
    expect(formatBytes(1023.7 * 2 ** 20)).toBe('1 GiB');
    expect(formatBytes(2 ** 20 - 1)).toBe('1 MiB');
  });
});
