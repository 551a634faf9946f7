import { nullTranslator } from '@jupyterlab/translation';
import { describe, expect, it } from 'vitest';

import {
  activityText,
  isStalled,
  stallChanges,
  stallKey,
  stallMessage,
  toldStalls,
  waitingForEvents
} from '../src/activity';
import { IActivity, IJob } from '../src/tokens';

const trans = nullTranslator.load('jupyter_forgather_tb');

const NOW = Date.parse('2026-01-01T12:00:00Z');
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();

function activity(fields: Partial<IActivity>): IActivity {
  return {
    runs: 3,
    event_files: 3,
    event_bytes: 4096,
    last_write: ago(12),
    state: 'live',
    stalled: false,
    ...fields
  };
}

function job(id: string, fields: Partial<IJob> = {}): IJob {
  return {
    id,
    label: `job ${id}`,
    status: 'running',
    activity: activity({}),
    ...fields
  } as IJob;
}

describe('activityText', () => {
  it('says what a folder without event files is waiting for', () => {
    const waiting = activity({ state: 'waiting', runs: 0, last_write: null });
    expect(activityText(waiting, trans, NOW)).toBe(
      'Waiting for event files (a trainer writes them a few seconds after it starts)'
    );
    expect(waitingForEvents(trans)).toBe(activityText(waiting, trans, NOW));
  });

  it('counts runs and tells how long ago the last write was while live', () => {
    expect(activityText(activity({}), trans, NOW)).toBe(
      '3 runs · last write 12 s ago'
    );
    expect(
      activityText(activity({ runs: 1, last_write: ago(0) }), trans, NOW)
    ).toBe('1 run · last write 0 s ago');
    expect(activityText(activity({ last_write: ago(150) }), trans, NOW)).toBe(
      '3 runs · last write 2 min ago'
    );
  });

  it('tells how long an idle folder has been idle, in the largest whole unit', () => {
    const idle = (seconds: number) =>
      activityText(
        activity({ state: 'idle', last_write: ago(seconds) }),
        trans,
        NOW
      );
    expect(idle(59)).toBe('3 runs · idle for 59 s');
    expect(idle(60 * 10)).toBe('3 runs · idle for 10 min');
    expect(idle(2 * 3600 + 59 * 60)).toBe('3 runs · idle for 2 h');
    expect(idle(3 * 86400)).toBe('3 runs · idle for 3 d');
  });

  it('never says "ago" of a time ahead of the browser clock, nor of no time', () => {
    expect(activityText(activity({ last_write: ago(-30) }), trans, NOW)).toBe(
      '3 runs · last write 0 s ago'
    );
    expect(activityText(activity({ last_write: null }), trans, NOW)).toBe(
      '3 runs'
    );
  });
});

describe('stall notices', () => {
  it('takes a running job whose activity is stalled as stalled', () => {
    const stalled = activity({ state: 'idle', stalled: true });
    expect(isStalled(job('a', { activity: stalled }))).toBe(true);
    expect(isStalled(job('a', { activity: stalled, status: 'killed' }))).toBe(
      false
    );
    expect(isStalled(job('a', { activity: null }))).toBe(false);
    expect(isStalled(job('a'))).toBe(false);
  });

  it('names the job and how long it has written nothing', () => {
    const stalled = job('a', {
      label: 'lr sweep',
      activity: activity({ state: 'idle', stalled: true, last_write: ago(660) })
    });
    expect(stallMessage(stalled, trans, NOW)).toBe(
      'TensorBoard “lr sweep”: no new events for 11 min. Has its training stopped?'
    );
  });

  it('shows one notice per stall and withdraws it when events come again', () => {
    const stalled = (id: string) =>
      job(id, { activity: activity({ state: 'idle', stalled: true }) });
    const first = stallChanges([stalled('a'), job('b')], new Set());
    expect(first.show.map(j => j.id)).toEqual(['a']);
    expect(first.withdraw).toEqual([]);

    const again = stallChanges([stalled('a'), job('b')], new Set(['a']));
    expect(again).toEqual({ show: [], withdraw: [] });

    const recovered = stallChanges([job('a'), stalled('b')], new Set(['a']));
    expect(recovered.show.map(j => j.id)).toEqual(['b']);
    expect(recovered.withdraw).toEqual(['a']);

    const gone = stallChanges([], new Set(['b']));
    expect(gone).toEqual({ show: [], withdraw: ['b'] });
  });

  it('remembers each stall told until its job writes again', () => {
    const stalled = (id: string, seconds = 700) =>
      job(id, {
        activity: activity({
          state: 'idle',
          stalled: true,
          last_write: ago(seconds)
        })
      });
    const told = new Set([stallKey(stalled('a')), stallKey(stalled('b'))]);
    // Still stalled: kept. Not listed (yet): kept.
    expect(toldStalls([stalled('a')], told)).toEqual(told);
    expect(toldStalls([], told)).toEqual(told);
    // Written again: forgotten, and its next stall is another.
    expect(toldStalls([job('a'), stalled('b')], told)).toEqual(
      new Set([stallKey(stalled('b'))])
    );
    expect(stallKey(stalled('a', 800))).not.toBe(stallKey(stalled('a')));
  });
});
