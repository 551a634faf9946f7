import { nullTranslator } from '@jupyterlab/translation';
import * as React from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';

import { IJob } from '../src/tokens';
import { JobUsage } from '../src/widgets/jobUsage';

const trans = nullTranslator.load('jupyter_forgather_tb');

const MiB = 2 ** 20;

/** A job as the server lists it, with just the fields the usage line reads. */
function job(fields: Partial<IJob>): IJob {
  return {
    status: 'running',
    limits: {
      memory_bytes: 1024 * MiB,
      cpu_nice: null,
      cpu_limit: null,
      enforced_by: 'cgroup1'
    },
    usage: {
      rss_bytes: 312 * MiB,
      pss_bytes: 300 * MiB,
      cpu_percent: 4,
      peak_bytes: 400 * MiB,
      sampled_at: 1767268800
    },
    ...fields
  } as IJob;
}

const render = (fields: Partial<IJob>) =>
  renderToStaticMarkup(<JobUsage job={job(fields)} trans={trans} />);

describe('JobUsage', () => {
  it('shows a labelled meter of memory against the limit, CPU and enforcement', () => {
    const html = render({});
    expect(html).toContain(
      '<div class="jp-ForgatherTB-meter" role="meter" aria-label="Memory" ' +
        `aria-valuemin="0" aria-valuemax="${1024 * MiB}" aria-valuenow="${312 * MiB}" ` +
        'aria-valuetext="312 MiB of 1 GiB">'
    );
    expect(html).toContain('width:30.46875%');
    expect(html).toContain(
      '<span class="jp-ForgatherTB-memory">312 MiB of 1 GiB</span>'
    );
    expect(html).toContain('<span class="jp-ForgatherTB-cpu">CPU 4 %</span>');
    expect(html).toContain('limited by cgroup v1</span>');
    expect(html).toContain(
      'title="Resident memory 312 MiB, proportional 300 MiB, peak 400 MiB; ' +
        'limit 1 GiB; limited by cgroup v1"'
    );
  });

  it('marks the meter and its text when near the limit, and caps the bar', () => {
    const base = job({}).usage!;
    const html = render({ usage: { ...base, rss_bytes: 1100 * MiB } });
    expect(html).toContain('class="jp-ForgatherTB-meter jp-mod-warn"');
    expect(html).toContain('class="jp-ForgatherTB-memory jp-mod-warn"');
    expect(html).toContain('width:100%');
    expect(html).toContain(`aria-valuenow="${1024 * MiB}"`);
  });

  it('has no meter without a limit, and nothing for a job that is not running', () => {
    const html = render({
      limits: {
        memory_bytes: null,
        cpu_nice: null,
        cpu_limit: null,
        enforced_by: null
      }
    });
    expect(html).not.toContain('role="meter"');
    expect(html).toContain(
      '<span class="jp-ForgatherTB-memory">312 MiB</span>'
    );
    expect(render({ status: 'exited' })).toBe('');
    expect(render({ status: 'queued', usage: null })).toBe('');
  });
});
