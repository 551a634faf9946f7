import { nullTranslator } from '@jupyterlab/translation';
import * as React from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';

import { IActivity, IJob, IPreview } from '../src/tokens';
import { JobActivity } from '../src/widgets/jobActivity';
import { JobPreview } from '../src/widgets/preview';

const trans = nullTranslator.load('jupyter_forgather_tb');

const render = (preview: IPreview) =>
  renderToStaticMarkup(
    <JobPreview
      preview={preview}
      trans={trans}
      onOpen={() => {}}
      onTag={() => {}}
    />
  );

describe('JobPreview', () => {
  it('draws a line per run, named by its tag and latest value, with the value beside it', () => {
    const html = render({
      tag: 'loss',
      tags: ['accuracy', 'loss'],
      runs: {
        run1: [
          [0, 1],
          [4, 0.25]
        ],
        run2: [
          [0, 2],
          [2, 0.9]
        ]
      }
    });
    expect(html.match(/<polyline /g)).toHaveLength(2);
    expect(html).toContain(
      'class="jp-ForgatherTB-sparklineRun jp-ForgatherTB-sparklineRun-1"'
    );
    expect(html).toContain(
      'role="img" aria-label="loss: latest 0.25 (run1, step 4)"'
    );
    expect(html).toContain(
      'aria-label="loss: latest 0.25 (run1, step 4). Show in TensorBoard"'
    );
    expect(html).toContain('<span class="jp-ForgatherTB-latest">0.25</span>');
    expect(html).toContain(
      'title="run1: 0.25 at step 4\nrun2: 0.9 at step 2\nClick to open in TensorBoard"'
    );
    expect(html).toContain('<option value="accuracy">accuracy</option>');
    expect(html).toContain('<option value="loss" selected="">loss</option>');
  });

  it('says when a tag has no points yet, and shows nothing without a tag', () => {
    const empty = render({ tag: 'loss', tags: ['loss'], runs: {} });
    expect(empty).toContain('aria-label="loss: no points yet"');
    expect(empty).not.toContain('<polyline');
    expect(render({ tag: '', tags: [], runs: {} })).toBe('');
  });
});

describe('JobActivity', () => {
  const activity: IActivity = {
    runs: 0,
    event_files: 0,
    event_bytes: 0,
    last_write: null,
    state: 'waiting',
    stalled: false
  };
  const line = (fields: Partial<IJob>) =>
    renderToStaticMarkup(
      <JobActivity
        trans={trans}
        job={{ status: 'running', activity, ...fields } as IJob}
      />
    );

  it('shows the activity of a job that is not over, marked when stalled', () => {
    expect(line({})).toContain('data-state="waiting"');
    expect(line({})).toContain('Waiting for event files');
    const stalled = {
      ...activity,
      state: 'idle' as const,
      runs: 2,
      stalled: true
    };
    expect(line({ activity: stalled })).toContain(
      'class="jp-ForgatherTB-activity jp-mod-warn"'
    );
    expect(line({ activity: null })).toBe('');
    expect(line({ status: 'exited' })).toBe('');
  });
});
