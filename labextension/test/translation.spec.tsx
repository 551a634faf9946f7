import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';

import { stallMessage } from '../src/activity';
import { IJob } from '../src/tokens';
import { JobActivity } from '../src/widgets/jobActivity';
import { JobUsage } from '../src/widgets/jobUsage';
import { JobPreview } from '../src/widgets/preview';

/**
 * A language bundle that marks every string it translates, «like this», and keeps the
 * message ids it was asked for: English that reaches the page unmarked bypassed it.
 */
function markingBundle(): { trans: TranslationBundle; asked: string[] } {
  const asked: string[] = [];
  const format = (msgid: string, args: unknown[]) =>
    `«${msgid.replace(/%(\d+)/g, (_, index) => String(args[Number(index) - 1]))}»`;
  const plural = (one: string, many: string, n: number, args: unknown[]) => {
    asked.push(one, many);
    return format(n === 1 ? one : many, [n, ...args]);
  };
  const trans: TranslationBundle = {
    __: (msgid, ...args) => (asked.push(msgid), format(msgid, args)),
    _n: (one, many, n, ...args) => plural(one, many, n, args),
    _p: (_, msgid, ...args) => (asked.push(msgid), format(msgid, args)),
    _np: (_, one, many, n, ...args) => plural(one, many, n, args),
    gettext: (msgid, ...args) => (asked.push(msgid), format(msgid, args)),
    ngettext: (one, many, n, ...args) => plural(one, many, n, args),
    pgettext: (_, msgid, ...args) => (asked.push(msgid), format(msgid, args)),
    npgettext: (_, one, many, n, ...args) => plural(one, many, n, args),
    dcnpgettext: (_, __, one, many, n, ...args) => plural(one, many, n, args)
  };
  return { trans, asked };
}

const NOW = Date.now();
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();

/** A running job with activity, memory use and a limit, as the server lists it. */
const RUNNING = {
  id: 'a1',
  label: 'lr sweep',
  status: 'running',
  created: ago(120),
  started: ago(110),
  error: null,
  output_tail: [],
  options: { logdir: 'runs/lr', host: '127.0.0.1' },
  exposure: 'proxy',
  transport: 'unix',
  port: null,
  loader: { name: 'python', private_network: false },
  activity: {
    runs: 2,
    event_files: 2,
    event_bytes: 100,
    last_write: ago(12),
    state: 'live',
    stalled: false
  },
  limits: {
    memory_bytes: 2 ** 30,
    cpu_nice: null,
    cpu_limit: null,
    enforced_by: 'cgroup1'
  },
  usage: {
    rss_bytes: 2 ** 28,
    pss_bytes: null,
    cpu_percent: 3,
    peak_bytes: 2 ** 28,
    sampled_at: NOW / 1000
  }
} as unknown as IJob;

describe('translation', () => {
  it("renders a job card's words through the bundle it is given", () => {
    const { trans, asked } = markingBundle();
    const html = renderToStaticMarkup(
      <>
        <JobActivity job={RUNNING} trans={trans} />
        <JobUsage job={RUNNING} trans={trans} />
        <JobPreview
          preview={{ tag: 'loss', tags: ['loss'], runs: { r: [[4, 0.5]] } }}
          trans={trans}
          onOpen={() => {}}
          onTag={() => {}}
        />
      </>
    );
    // Interpolated values are formatted into the translated sentence, itself translated.
    expect(html).toContain('>««2 runs» · last write «12 s» ago»</div>');
    expect(html).toContain('title="««2 event files», last written ');
    expect(html).toContain('aria-label="«Memory»"');
    expect(html).toContain('«CPU 3 %»');
    expect(html).toContain('«limited by cgroup v1»');
    expect(html).toContain('aria-label="«loss: latest 0.5 (r, step 4)»"');
    expect(html).toContain('aria-label="«Scalar tag shown»"');
    // Placeholders reach the bundle untouched, so a translation can move them.
    expect(asked).toContain('%1 · last write %2 ago');
    expect(asked).toEqual(expect.arrayContaining(['%1 run', '%1 runs']));
  });

  it('words a stall notice through the bundle', () => {
    const { trans } = markingBundle();
    expect(stallMessage(RUNNING, trans, NOW)).toBe(
      '«TensorBoard “lr sweep”: no new events for «12 s». Has its training stopped?»'
    );
  });
});
