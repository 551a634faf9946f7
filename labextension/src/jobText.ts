/**
 * Jobs in words, kept apart from React so they can be tested alone: a job's state,
 * its age, its S3 mirror, its loader and who else can open it, and whether opening it
 * shows TensorBoard. Pure: no side effects.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { formatBytes } from './sizes';
import { remoteProtocol } from './form';
import { IFirstCopy, IJob, ILoader, IMirrorStatus, JobStatus } from './tokens';

/** What a remote job's mirror copies from, for its card: "S3", "GCS", "Azure", "SSH". */
export function storeName(logdir: string): string {
  const names: Record<string, string> = {
    s3: 'S3',
    gs: 'GCS',
    az: 'Azure',
    ssh: 'SSH'
  };
  return names[remoteProtocol(logdir) ?? ''] ?? 'Remote';
}

/**
 * A mirror's state in a line: "12 objects, 1 skipped, 3.2 MiB, synced 5 s ago, 40
 * requests"; the request count only when the job reports it.
 */
export function mirrorText(
  mirror: IMirrorStatus,
  trans: TranslationBundle,
  now: number = Date.now()
): string {
  const synced = mirror.last_sync
    ? trans.__('synced %1 ago', age(mirror.last_sync, trans, now))
    : trans.__('not synced yet');
  const objects = trans._n('%1 object', '%1 objects', mirror.objects);
  const text = mirror.skipped_count
    ? trans.__(
        '%1, %2 skipped, %3, %4',
        objects,
        mirror.skipped_count,
        formatBytes(mirror.bytes),
        synced
      )
    : trans.__('%1, %2, %3', objects, formatBytes(mirror.bytes), synced);
  return typeof mirror.requests === 'number'
    ? trans.__(
        '%1, %2',
        text,
        trans._n('%1 request', '%1 requests', mirror.requests)
      )
    : text;
}

/** A first copy's progress: "3 of 10 files, 1.2 MiB of 5 MiB, about 20 s left". */
export function firstCopyText(
  copy: IFirstCopy,
  trans: TranslationBundle
): string {
  const done = trans.__(
    '%1 of %2 files, %3 of %4',
    copy.files,
    copy.files_total,
    formatBytes(copy.bytes),
    formatBytes(copy.bytes_total)
  );
  if (copy.eta_seconds === null || !Number.isFinite(copy.eta_seconds)) {
    return done;
  }
  const left = Math.max(0, Math.round(copy.eta_seconds));
  const eta =
    left < 60
      ? trans.__('%1 s', left)
      : left < 3600
        ? trans.__('%1 min', Math.round(left / 60))
        : trans.__('%1 h', Math.round(left / 3600));
  return trans.__('%1, about %2 left', done, eta);
}

/** A first copy's completion from 0 to 1, by bytes (by files when it has no bytes). */
export function firstCopyFraction(copy: IFirstCopy): number {
  const [done, total] =
    copy.bytes_total > 0
      ? [copy.bytes, copy.bytes_total]
      : [copy.files, copy.files_total];
  return total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
}

/** The keys an S3 mirror left out and why, for a tooltip; empty when there are none. */
export function skippedText(
  mirror: IMirrorStatus,
  trans: TranslationBundle
): string {
  if (!mirror.skipped_count) {
    return '';
  }
  const lines = mirror.skipped.map(({ key, reason }) =>
    trans.__('%1: %2', key, reason)
  );
  const more = mirror.skipped_count - mirror.skipped.length;
  return [
    trans.__('Not mirrored:'),
    ...lines,
    ...(more > 0 ? [trans.__('and %1 more', more)] : [])
  ].join('\n');
}

/** The loader a job got, for its card; `warn` when its port is open to local users. */
export function loaderText(
  loader: ILoader,
  trans: TranslationBundle
): { text: string; warn: boolean } {
  if (loader.name === 'python') {
    return { text: trans.__('Python loader'), warn: false };
  }
  if (loader.private_network) {
    return { text: trans.__('Rust loader, private network'), warn: false };
  }
  return {
    text: trans.__(
      "Rust loader: its loopback port is open to this machine's users"
    ),
    warn: true
  };
}

/**
 * The warning a job's card shows when others can open its TensorBoard without
 * Jupyter's login; null when they cannot, or when the loader's line says it already.
 */
export function exposureWarning(
  job: Pick<IJob, 'exposure' | 'transport' | 'port' | 'options'>,
  trans: TranslationBundle
): string | null {
  const port = job.port ? trans.__('port %1', job.port) : trans.__('a port');
  if (job.exposure === 'network') {
    return trans.__(
      "Listening on %1 of all interfaces: anyone who can reach this machine can open it without Jupyter's login.",
      port
    );
  }
  if (job.exposure === 'local' && job.transport === 'tcp') {
    return trans.__(
      "Listening on %1 of %2: every user of this machine can open it without Jupyter's login.",
      port,
      job.options.host
    );
  }
  return null;
}

/** The status badge's text: the state, with the queue position when queued. */
export function statusText(
  job: Pick<IJob, 'status' | 'queue_position'>,
  trans: TranslationBundle
): string {
  if (job.status === 'queued' && job.queue_position) {
    return trans.__('queued #%1', job.queue_position);
  }
  if (job.status === 'suspended') {
    return trans.__('suspended, wakes when opened');
  }
  return statusName(job.status, trans);
}

/** A job's state in a word, as the server names it ("running", "failed"). */
export function statusName(
  status: JobStatus,
  trans: TranslationBundle
): string {
  switch (status) {
    case 'queued':
      return trans.__('queued');
    case 'suspended':
      return trans.__('suspended');
    case 'starting':
      return trans.__('starting');
    case 'running':
      return trans.__('running');
    case 'exited':
      return trans.__('exited');
    case 'failed':
      return trans.__('failed');
    case 'killed':
      return trans.__('killed');
    case 'lost':
      return trans.__('lost');
    default:
      return status;
  }
}

/** Whether opening the job shows TensorBoard: it runs, or is suspended (opening wakes it). */
export function isOpenable(job: Pick<IJob, 'status'>): boolean {
  return job.status === 'running' || job.status === 'suspended';
}

/** How long ago `iso` was, shortly: "12 s", "3 min", "5 h", "2 d". */
export function age(
  iso: string,
  trans: TranslationBundle,
  now: number = Date.now()
): string {
  const seconds = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
  if (seconds < 60) {
    return trans.__('%1 s', seconds);
  }
  if (seconds < 3600) {
    return trans.__('%1 min', Math.floor(seconds / 60));
  }
  if (seconds < 86400) {
    return trans.__('%1 h', Math.floor(seconds / 3600));
  }
  return trans.__('%1 d', Math.floor(seconds / 86400));
}
