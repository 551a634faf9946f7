/**
 * What a job's activity and its stalls say, in words: pure, for the job card and
 * the stall notices.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { age } from './jobText';
import { IActivity, IJob } from './tokens';

/** The card's words while a log directory has no event files yet. */
export function waitingForEvents(trans: TranslationBundle): string {
  return trans.__(
    'Waiting for event files (a trainer writes them a few seconds after it starts)'
  );
}

/**
 * A job's activity at a glance: the waiting text, "3 runs · last write 12 s ago"
 * while live, "3 runs · idle for 2 h" since.
 */
export function activityText(
  activity: IActivity,
  trans: TranslationBundle,
  now: number = Date.now()
): string {
  if (activity.state === 'waiting') {
    return waitingForEvents(trans);
  }
  const runs = trans._n('%1 run', '%1 runs', activity.runs);
  if (!activity.last_write) {
    return runs;
  }
  const since = age(activity.last_write, trans, now);
  return activity.state === 'live'
    ? trans.__('%1 · last write %2 ago', runs, since)
    : trans.__('%1 · idle for %2', runs, since);
}

/** Whether a job is running with a stalled log directory (no new events for a while). */
export function isStalled(job: Pick<IJob, 'status' | 'activity'>): boolean {
  return job.status === 'running' && job.activity?.stalled === true;
}

/** The stall notice's message, naming the job. */
export function stallMessage(
  job: Pick<IJob, 'label' | 'activity'>,
  trans: TranslationBundle,
  now: number = Date.now()
): string {
  return job.activity?.last_write
    ? trans.__(
        'TensorBoard “%1”: no new events for %2. Has its training stopped?',
        job.label,
        age(job.activity.last_write, trans, now)
      )
    : trans.__(
        'TensorBoard “%1”: no new events. Has its training stopped?',
        job.label
      );
}

/**
 * Which stall notices to show and which to withdraw, given the jobs listed and the
 * ids of the jobs already notified: one notice per stall, withdrawn when new events
 * come (or the job ends or leaves the list), so a later stall is told again.
 */
export function stallChanges(
  jobs: readonly IJob[],
  notified: ReadonlySet<string>
): { show: IJob[]; withdraw: string[] } {
  const stalled = new Set(jobs.filter(isStalled).map(job => job.id));
  return {
    show: jobs.filter(job => stalled.has(job.id) && !notified.has(job.id)),
    withdraw: [...notified].filter(id => !stalled.has(id))
  };
}

/** One stall: its job and the last write it followed (a later stall has another). */
export function stallKey(job: Pick<IJob, 'id' | 'activity'>): string {
  return `${job.id}@${job.activity?.last_write ?? ''}`;
}

/**
 * The stalls already told, kept up to date with the jobs listed: a listed job that
 * is no longer stalled is forgotten, so its next stall is told; an unlisted job's
 * stall is kept (the list may not have loaded yet).
 */
export function toldStalls(
  jobs: readonly IJob[],
  told: ReadonlySet<string>
): Set<string> {
  const listed = new Set(jobs.map(job => job.id));
  const current = new Set(jobs.filter(isStalled).map(stallKey));
  return new Set(
    [...told].filter(
      key => current.has(key) || !listed.has(key.slice(0, key.indexOf('@')))
    )
  );
}
