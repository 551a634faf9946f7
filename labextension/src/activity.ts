/**
 * What a job's activity and its stalls say, in words: pure, for the job card and
 * the stall notices.
 */
import { age } from './form';
import { IActivity, IJob } from './tokens';

/** The card's words while a log directory has no event files yet. */
export const WAITING_TEXT =
  'Waiting for event files (a trainer writes them a few seconds after it starts)';

/**
 * A job's activity at a glance: the waiting text, "3 runs · last write 12 s ago"
 * while live, "3 runs · idle for 2 h" since.
 */
export function activityText(
  activity: IActivity,
  now: number = Date.now()
): string {
  if (activity.state === 'waiting') {
    return WAITING_TEXT;
  }
  const runs = `${activity.runs} ${activity.runs === 1 ? 'run' : 'runs'}`;
  if (!activity.last_write) {
    return runs;
  }
  const since = age(activity.last_write, now);
  return activity.state === 'live'
    ? `${runs} · last write ${since} ago`
    : `${runs} · idle for ${since}`;
}

/** Whether a job is running with a stalled log directory (no new events for a while). */
export function isStalled(job: Pick<IJob, 'status' | 'activity'>): boolean {
  return job.status === 'running' && job.activity?.stalled === true;
}

/** The stall notice's message, naming the job. */
export function stallMessage(
  job: Pick<IJob, 'label' | 'activity'>,
  now: number = Date.now()
): string {
  const since = job.activity?.last_write
    ? ` for ${age(job.activity.last_write, now)}`
    : '';
  return `TensorBoard “${job.label}”: no new events${since}. Has its training stopped?`;
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
