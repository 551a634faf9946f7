/**
 * What a TensorBoard tab shows, decided from what the server says about its job:
 * pure functions, kept apart from the widgets so they can be tested alone.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { statusText } from './jobText';
import { ENDED_STATUSES, IJob, IJobOptions, ILaunchRequest } from './tokens';

/** A job's options as the server lists them (its JSON also carries the memory cap). */
export type IKnownOptions = IJobOptions & { memory_limit?: number | null };

/**
 * What a tab shows: its TensorBoard (`live`), a panel while the job waits to run, a
 * panel once it has ended or when this server does not know it, or a notice when the
 * server could not be asked.
 */
export type TabState =
  | { kind: 'checking' }
  | { kind: 'live'; job: IJob }
  | { kind: 'waiting'; job: IJob }
  | { kind: 'ended'; job: IJob }
  | { kind: 'unknown' }
  | { kind: 'unreachable'; message: string };

/**
 * The state a tab takes for its job as the server last described it. A suspended job
 * shows its TensorBoard too: the frame's request is what wakes it.
 */
export function stateOf(job: IJob): TabState {
  if (job.status === 'running' || job.status === 'suspended') {
    return { kind: 'live', job };
  }
  return ENDED_STATUSES.has(job.status)
    ? { kind: 'ended', job }
    : { kind: 'waiting', job };
}

/**
 * The options that make two jobs the same TensorBoard to look at: what it reads and
 * how it shows it, not how it is reached (port, host, bind_all), how it is limited
 * (memory) or queued (priority).
 */
const SHOWN_OPTIONS = [
  'logdir',
  'window_title',
  'reload_interval',
  'reload_multifile',
  'samples_per_plugin',
  'load_fast',
  'sync_interval'
] as const;

/** Whether two jobs' options serve the same TensorBoard (see `SHOWN_OPTIONS`). */
export function sameTensorBoard(a: IJobOptions, b: IJobOptions): boolean {
  return SHOWN_OPTIONS.every(name => (a[name] ?? null) === (b[name] ?? null));
}

/**
 * The job a tab whose job has ended (or is unknown) should follow: the newest live
 * job serving the same TensorBoard, such as its relaunch; null when there is none.
 */
export function successor(
  options: IJobOptions,
  jobs: readonly IJob[],
  exceptId: string
): IJob | null {
  for (let index = jobs.length - 1; index >= 0; index--) {
    const job = jobs[index];
    if (
      job.id !== exceptId &&
      !ENDED_STATUSES.has(job.status) &&
      sameTensorBoard(job.options, options)
    ) {
      return job;
    }
  }
  return null;
}

/** Why a job ended, in words: the server's reason, else what its state implies. */
export function endedReason(
  job: Pick<IJob, 'status' | 'error' | 'exit_code'>,
  trans: TranslationBundle
): string {
  if (job.error) {
    return job.error;
  }
  switch (job.status) {
    case 'killed':
      return trans.__('it was stopped on request');
    case 'exited':
      return job.exit_code === null
        ? trans.__('TensorBoard exited')
        : trans.__('TensorBoard exited with code %1', job.exit_code);
    case 'lost':
      return trans.__('the server lost track of its process');
    default:
      return trans.__('TensorBoard stopped');
  }
}

/** What a waiting tab says: the job's state and when TensorBoard will show. */
export function waitingText(
  job: Pick<IJob, 'label' | 'status' | 'queue_position' | 'queue_reason'>,
  trans: TranslationBundle
): string {
  return job.queue_reason
    ? trans.__(
        '“%1” is %2 (%3): TensorBoard shows here once it runs.',
        job.label,
        statusText(job, trans),
        job.queue_reason
      )
    : trans.__(
        '“%1” is %2: TensorBoard shows here once it runs.',
        job.label,
        statusText(job, trans)
      );
}

/**
 * The launch request that starts a job on the same TensorBoard as `options`, for a tab
 * whose job this server does not know (a workspace from another server, or from before
 * a restart). How it was reached (port, host, bind_all) is left to this server's
 * defaults: exposing it on a network is a choice to make again, in the form.
 */
export function launchAgainRequest(options: IKnownOptions): ILaunchRequest {
  const request: ILaunchRequest = {
    logdir: options.logdir,
    window_title: options.window_title,
    priority: options.priority,
    reload_interval: options.reload_interval,
    reload_multifile: options.reload_multifile,
    samples_per_plugin: options.samples_per_plugin,
    load_fast: options.load_fast,
    sync_interval: options.sync_interval
  };
  if (typeof options.memory_limit === 'number') {
    request.memory_limit = options.memory_limit;
  }
  return request;
}

/** Whether a value restored from a workspace looks like a job's options. */
export function isJobOptions(value: unknown): value is IKnownOptions {
  return (
    !!value &&
    typeof value === 'object' &&
    typeof (value as IJobOptions).logdir === 'string' &&
    (value as IJobOptions).logdir !== '' &&
    typeof (value as IJobOptions).window_title === 'string'
  );
}
