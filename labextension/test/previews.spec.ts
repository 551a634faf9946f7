import { ServerConnection } from '@jupyterlab/services';
import { StateDB } from '@jupyterlab/statedb';
import { describe, expect, it } from 'vitest';

import { TensorBoardAPI } from '../src/api';
import { JobsModel } from '../src/model';
import {
  IDLE_PREVIEW_AGE,
  IPreviewEntry,
  LIVE_PREVIEW_AGE,
  logdirKey,
  PreviewsModel,
  previewDue,
  REMEMBERED_TAGS,
  restoreTags,
  TagMemory
} from '../src/previews';
import { IActivity, IJob, PREVIEW_TAGS_KEY } from '../src/tokens';

function activity(state: IActivity['state']): IActivity {
  return {
    runs: 2,
    event_files: 2,
    event_bytes: 100,
    last_write: null,
    state,
    stalled: false
  };
}

function job(id: string, fields: Partial<IJob> = {}): IJob {
  return {
    id,
    label: id,
    status: 'running',
    options: { logdir: `/root/${id}` },
    activity: activity('live'),
    ...fields
  } as IJob;
}

const entry = (requestedAt: number, pending = false): IPreviewEntry => ({
  preview: null,
  requestedAt,
  pending
});

describe('previewDue', () => {
  it('fetches a running job with event files at once, then when its preview is old', () => {
    const live = job('a');
    expect(previewDue(live, undefined, 1000)).toBe(true);
    expect(previewDue(live, entry(1000), 1000 + LIVE_PREVIEW_AGE - 1)).toBe(
      false
    );
    expect(previewDue(live, entry(1000), 1000 + LIVE_PREVIEW_AGE)).toBe(true);
    expect(previewDue(live, entry(0, true), 1e9)).toBe(false);
    const idle = job('a', { activity: activity('idle') });
    expect(previewDue(idle, entry(0), LIVE_PREVIEW_AGE)).toBe(false);
    expect(previewDue(idle, entry(0), IDLE_PREVIEW_AGE)).toBe(true);
    expect(previewDue(job('a', { activity: null }), undefined, 0)).toBe(true);
  });

  it('never fetches a job that is not running or has no event files yet', () => {
    expect(previewDue(job('a', { status: 'queued' }), undefined, 0)).toBe(
      false
    );
    expect(previewDue(job('a', { status: 'exited' }), undefined, 0)).toBe(
      false
    );
    const waiting = job('a', { activity: activity('waiting') });
    expect(previewDue(waiting, undefined, 0)).toBe(false);
  });
});

describe('logdirKey', () => {
  it('is the log directory, or the compared folders in name order', () => {
    expect(logdirKey(job('a'))).toBe('/root/a');
    expect(logdirKey(job('a', { logdirs: null }))).toBe('/root/a');
    const compare = job('c', { logdirs: { b: '/x/b', a: '/y/a' } });
    expect(logdirKey(compare)).toBe('a=/y/a\nb=/x/b');
  });
});

describe('restoreTags', () => {
  it('keeps string tags only, and the latest picks', () => {
    expect([...restoreTags({ a: 'loss', b: 3, c: '', d: 'acc' })]).toEqual([
      ['a', 'loss'],
      ['d', 'acc']
    ]);
    expect(restoreTags(null).size).toBe(0);
    expect(restoreTags(['loss']).size).toBe(0);
    const many = Object.fromEntries(
      Array.from({ length: REMEMBERED_TAGS + 5 }, (_, i) => [`d${i}`, 'loss'])
    );
    const kept = restoreTags(many);
    expect(kept.size).toBe(REMEMBERED_TAGS);
    expect(kept.has('d0')).toBe(false);
    expect(kept.has(`d${REMEMBERED_TAGS + 4}`)).toBe(true);
  });
});

/**
 * A client whose fetch answers the job list and previews from `reply`: the server
 * side is covered for real by the browser tests; this checks the model's own logic.
 */
function client(
  jobs: IJob[],
  reply: (id: string, tag: string | null) => Response
) {
  const previews: string[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(
      (input instanceof Request ? input : new Request(input, init)).url
    );
    const match = url.pathname.match(/\/jobs\/([^/]+)\/preview$/);
    if (!match) {
      return json(jobs);
    }
    const tag = url.searchParams.get('tag');
    previews.push(`${match[1]}:${tag ?? ''}`);
    return reply(match[1], tag);
  };
  const settings = ServerConnection.makeSettings({
    baseUrl: 'http://lab.test/',
    fetch,
    Request,
    Headers
  });
  return { api: new TensorBoardAPI(settings), previews };
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' }
  });

const answer = (tag: string) => ({
  tag,
  tags: ['acc', 'loss'],
  runs: { run1: [[0, 1]] }
});

/** Resolve once the model has emitted `count` changes. */
const settled = (model: PreviewsModel, count = 1) =>
  new Promise<void>(resolve => {
    let seen = 0;
    model.changed.connect(() => {
      if (++seen === count) {
        resolve();
      }
    });
  });

describe('PreviewsModel', () => {
  it('fetches previews only while the list is shown, with the tag picked for the folder', async () => {
    const state = new StateDB();
    await state.save(PREVIEW_TAGS_KEY, { '/root/a': 'acc' });
    const running = [job('a'), job('b', { activity: activity('waiting') })];
    const { api, previews } = client(running, (id, tag) =>
      json(answer(tag ?? 'loss'))
    );
    const jobs = new JobsModel(api);
    const model = new PreviewsModel(jobs, new TagMemory(state));

    await jobs.refresh();
    expect(previews).toEqual([]); // not shown: the list was fetched for stall notices

    const first = settled(model);
    const view = jobs.watch();
    await first;
    expect(previews).toEqual(['a:acc']); // b has no event files yet
    expect(model.preview('a')?.tag).toBe('acc');
    expect(model.preview('b')).toBeNull();

    const picked = settled(model);
    await model.pick(running[0], 'loss');
    await picked;
    expect(previews).toEqual(['a:acc', 'a:loss']);
    expect(await state.fetch(PREVIEW_TAGS_KEY)).toEqual({ '/root/a': 'loss' });
    view.dispose();
    jobs.dispose();
  });

  it('forgets a picked tag the job no longer has, and keeps the last preview on a 409', async () => {
    const state = new StateDB();
    await state.save(PREVIEW_TAGS_KEY, { '/root/a': 'gone' });
    let status = 200;
    const { api, previews } = client([job('a')], (id, tag) =>
      tag === 'gone'
        ? json({ message: "no scalar tag 'gone'" }, 400)
        : status === 200
          ? json(answer('loss'))
          : json({ message: 'not running' }, status)
    );
    const jobs = new JobsModel(api);
    const model = new PreviewsModel(jobs, new TagMemory(state));
    await model.pick(job('a'), 'gone');
    expect(previews).toEqual(['a:gone', 'a:']);
    expect(model.preview('a')?.tag).toBe('loss');
    expect(await state.fetch(PREVIEW_TAGS_KEY)).toEqual({});

    status = 409;
    await model.pick(job('a'), 'loss');
    expect(previews).toEqual(['a:gone', 'a:', 'a:loss']);
    expect(model.preview('a')?.tag).toBe('loss');
    jobs.dispose();
  });
});
