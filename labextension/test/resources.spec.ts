import { nullTranslator } from '@jupyterlab/translation';
import { describe, expect, it } from 'vitest';

import {
  cpuText,
  doubledMemoryLimit,
  enforcementText,
  memoryMeter
} from '../src/resources';
import { ILimits, IUsage } from '../src/tokens';

const trans = nullTranslator.load('jupyter_forgather_tb');

const MiB = 2 ** 20;
const GiB = 2 ** 30;

const limits = (memory: number | null, by: ILimits['enforced_by'] = null) => ({
  memory_bytes: memory,
  cpu_nice: null,
  cpu_limit: null,
  enforced_by: by
});

const usage: IUsage = {
  rss_bytes: 312 * MiB,
  pss_bytes: 280 * MiB,
  cpu_percent: 4.4,
  peak_bytes: 400 * MiB,
  sampled_at: 1767268800
};

describe('memoryMeter', () => {
  it('shows a running job against its limit, with the details in its title', () => {
    expect(
      memoryMeter({ status: 'running', limits: limits(GiB), usage }, trans)
    ).toEqual({
      text: '312 MiB of 1 GiB',
      used: 312 * MiB,
      limit: GiB,
      warn: false,
      title:
        'Resident memory 312 MiB, proportional 280 MiB, peak 400 MiB; limit 1 GiB'
    });
  });

  it('warns above 90 % of the limit', () => {
    const near = { ...usage, rss_bytes: 0.95 * GiB };
    expect(
      memoryMeter(
        { status: 'running', limits: limits(GiB), usage: near },
        trans
      )?.warn
    ).toBe(true);
    const under = { ...usage, rss_bytes: 0.85 * GiB };
    expect(
      memoryMeter(
        { status: 'running', limits: limits(GiB), usage: under },
        trans
      )?.warn
    ).toBe(false);
  });

  it('shows use alone without a limit, and the limit alone before a sample', () => {
    const free = memoryMeter(
      {
        status: 'running',
        limits: limits(null),
        usage: { ...usage, pss_bytes: null }
      },
      trans
    );
    expect(free?.text).toBe('312 MiB');
    expect(free?.limit).toBeNull();
    expect(free?.warn).toBe(false);
    expect(free?.title).toBe('Resident memory 312 MiB, peak 400 MiB; no limit');
    const early = memoryMeter(
      {
        status: 'running',
        limits: limits(512 * MiB),
        usage: null
      },
      trans
    );
    expect(early).toMatchObject({ text: 'limit 512 MiB', used: null });
    expect(
      memoryMeter(
        { status: 'running', limits: limits(null), usage: null },
        trans
      )
    ).toBeNull();
  });

  it('shows nothing for a job that is not running', () => {
    for (const status of ['queued', 'starting', 'failed'] as const) {
      expect(
        memoryMeter({ status, limits: limits(GiB), usage }, trans)
      ).toBeNull();
    }
  });
});

describe('cpuText and enforcementText', () => {
  it('rounds CPU use to a whole percent while running', () => {
    expect(cpuText({ status: 'running', usage })).toBe('4 %');
    expect(
      cpuText({ status: 'running', usage: { ...usage, cpu_percent: 187.6 } })
    ).toBe('188 %');
    expect(cpuText({ status: 'running', usage: null })).toBeNull();
    expect(cpuText({ status: 'exited', usage })).toBeNull();
  });

  it('names what enforces the limits', () => {
    expect(enforcementText(limits(GiB, 'cgroup2'), trans)).toBe(
      'limited by cgroup v2'
    );
    expect(enforcementText(limits(GiB, 'cgroup1'), trans)).toBe(
      'limited by cgroup v1'
    );
    expect(enforcementText(limits(GiB, 'watchdog'), trans)).toBe(
      'limited by a watchdog'
    );
    expect(enforcementText(limits(null), trans)).toBeNull();
  });
});

describe('doubledMemoryLimit', () => {
  const failed = {
    status: 'failed' as const,
    error: 'memory limit 512 MiB exceeded (peak 530 MiB)',
    limits: limits(512 * MiB, 'watchdog')
  };

  it('offers twice the limit when an ended job went over it', () => {
    expect(doubledMemoryLimit(failed)).toBe(GiB);
    expect(doubledMemoryLimit({ ...failed, status: 'killed' })).toBe(GiB);
  });

  it('offers nothing for other errors, live jobs or jobs without a limit', () => {
    expect(
      doubledMemoryLimit({ ...failed, error: 'TensorBoard exited with code 1' })
    ).toBeNull();
    expect(doubledMemoryLimit({ ...failed, error: null })).toBeNull();
    expect(doubledMemoryLimit({ ...failed, status: 'running' })).toBeNull();
    expect(doubledMemoryLimit({ ...failed, limits: limits(null) })).toBeNull();
  });
});
