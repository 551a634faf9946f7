import { nullTranslator } from '@jupyterlab/translation';
import { describe, expect, it } from 'vitest';

import {
  endedReason,
  isJobOptions,
  launchAgainRequest,
  sameTensorBoard,
  stateOf,
  successor,
  waitingText
} from '../src/tabState';
import { IJob, IJobOptions } from '../src/tokens';

const trans = nullTranslator.load('jupyter_forgather_tb');

const OPTIONS: IJobOptions = {
  logdir: '/home/a/runs',
  window_title: 'runs',
  port: null,
  priority: 0,
  bind_all: false,
  host: null,
  reload_interval: null,
  reload_multifile: null,
  samples_per_plugin: null,
  load_fast: 'auto',
  sync_interval: null
};

/** A job as the server lists it, with the fields a tab reads. */
function job(id: string, fields: Partial<IJob> = {}): IJob {
  return {
    id,
    label: 'runs',
    status: 'running',
    options: OPTIONS,
    url: `/base/tb/${id}/`,
    error: null,
    exit_code: null,
    queue_position: null,
    queue_reason: null,
    ...fields
  } as IJob;
}

describe('stateOf', () => {
  it('shows TensorBoard only while its job runs', () => {
    expect(stateOf(job('a')).kind).toBe('live');
    expect(stateOf(job('a', { status: 'starting' })).kind).toBe('waiting');
    expect(stateOf(job('a', { status: 'queued' })).kind).toBe('waiting');
    for (const status of ['exited', 'failed', 'killed', 'lost'] as const) {
      expect(stateOf(job('a', { status })).kind).toBe('ended');
    }
  });

  it("shows a suspended job's TensorBoard, whose request wakes it", () => {
    expect(stateOf(job('a', { status: 'suspended' })).kind).toBe('live');
  });
});

describe('sameTensorBoard', () => {
  it('ignores how a job is reached, limited and queued', () => {
    const other = {
      ...OPTIONS,
      port: 6006,
      host: '127.0.0.1',
      priority: 5,
      memory_limit: 2 ** 30
    };
    expect(sameTensorBoard(OPTIONS, other)).toBe(true);
  });

  it('tells apart what TensorBoard reads or shows', () => {
    expect(sameTensorBoard(OPTIONS, { ...OPTIONS, logdir: '/other' })).toBe(
      false
    );
    expect(sameTensorBoard(OPTIONS, { ...OPTIONS, window_title: 'x' })).toBe(
      false
    );
    expect(sameTensorBoard(OPTIONS, { ...OPTIONS, reload_interval: 2 })).toBe(
      false
    );
    expect(sameTensorBoard(OPTIONS, { ...OPTIONS, load_fast: 'false' })).toBe(
      false
    );
  });
});

describe('successor', () => {
  it('is the newest live job serving the same TensorBoard', () => {
    const jobs = [
      job('old', { status: 'killed' }),
      job('first'),
      job('other', { options: { ...OPTIONS, logdir: '/other' } }),
      job('second', { status: 'starting' }),
      job('gone', { status: 'failed' })
    ];
    expect(successor(OPTIONS, jobs, 'old')?.id).toBe('second');
  });

  it('is never the job itself, nor an ended one', () => {
    const jobs = [job('self'), job('ended', { status: 'exited' })];
    expect(successor(OPTIONS, jobs, 'self')).toBeNull();
  });
});

describe('endedReason', () => {
  it("is the server's reason when it gave one", () => {
    expect(
      endedReason(
        { status: 'failed', error: 'out of memory', exit_code: -9 },
        trans
      )
    ).toBe('out of memory');
  });

  it('says what the state means otherwise', () => {
    expect(
      endedReason({ status: 'killed', error: null, exit_code: 0 }, trans)
    ).toBe('it was stopped on request');
    expect(
      endedReason({ status: 'exited', error: null, exit_code: 3 }, trans)
    ).toBe('TensorBoard exited with code 3');
    expect(
      endedReason({ status: 'exited', error: null, exit_code: null }, trans)
    ).toBe('TensorBoard exited');
  });
});

describe('waitingText', () => {
  it('gives the queue position and why it waits', () => {
    expect(
      waitingText(
        job('a', {
          status: 'queued',
          queue_position: 2,
          queue_reason: 'waiting for a free slot'
        }),
        trans
      )
    ).toBe(
      '“runs” is queued #2 (waiting for a free slot): TensorBoard shows here once it runs.'
    );
  });
});

describe('launchAgainRequest', () => {
  it('keeps what TensorBoard reads and its memory cap, not its network options', () => {
    const request = launchAgainRequest({
      ...OPTIONS,
      port: 6006,
      bind_all: true,
      host: '0.0.0.0',
      reload_interval: 2,
      memory_limit: 2 ** 30
    });
    expect(request).toEqual({
      logdir: '/home/a/runs',
      window_title: 'runs',
      priority: 0,
      reload_interval: 2,
      reload_multifile: null,
      samples_per_plugin: null,
      load_fast: 'auto',
      sync_interval: null,
      memory_limit: 2 ** 30
    });
  });
});

describe('isJobOptions', () => {
  it('accepts options a workspace saved, and nothing else', () => {
    expect(isJobOptions(OPTIONS)).toBe(true);
    expect(isJobOptions(null)).toBe(false);
    expect(isJobOptions({ logdir: '', window_title: 'x' })).toBe(false);
    expect(isJobOptions({ logdir: '/x' })).toBe(false);
    expect(isJobOptions('runs')).toBe(false);
  });
});
