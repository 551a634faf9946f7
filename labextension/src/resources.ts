/**
 * How a job's resource limits and use are shown on its card, kept apart from React
 * so it can be tested alone.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { formatBytes } from './sizes';
import { ENDED_STATUSES, IJob, ILimits } from './tokens';

/** Above this share of its memory limit a job's meter warns. */
export const WARN_FRACTION = 0.9;

/** A running job's memory against its limit. */
export interface IMemoryMeter {
  /** "312 MiB of 1 GiB"; "312 MiB" without a limit; "limit 1 GiB" before a sample. */
  text: string;
  /** Bytes in use, or null before the first sample. */
  used: number | null;
  /** The limit in bytes, or null without one. */
  limit: number | null;
  /** Whether use has passed `WARN_FRACTION` of the limit. */
  warn: boolean;
  /** The details for a tooltip: resident, proportional and peak memory, and the limit. */
  title: string;
}

/**
 * The memory meter of a running job, or null when there is nothing to show (a job
 * that is not running, or one with neither a sample nor a limit).
 */
export function memoryMeter(
  job: Pick<IJob, 'status' | 'limits' | 'usage'>,
  trans: TranslationBundle
): IMemoryMeter | null {
  if (job.status !== 'running') {
    return null;
  }
  const limit = job.limits?.memory_bytes ?? null;
  const usage = job.usage;
  if (!usage) {
    return limit === null
      ? null
      : {
          text: trans.__('limit %1', formatBytes(limit)),
          used: null,
          limit,
          warn: false,
          title: trans.__('Memory limit %1', formatBytes(limit))
        };
  }
  const used = usage.rss_bytes;
  const details = [trans.__('Resident memory %1', formatBytes(used))];
  if (usage.pss_bytes !== null && usage.pss_bytes !== undefined) {
    details.push(trans.__('proportional %1', formatBytes(usage.pss_bytes)));
  }
  details.push(trans.__('peak %1', formatBytes(usage.peak_bytes)));
  const title = trans.__(
    '%1; %2',
    details.join(', '),
    limit === null
      ? trans.__('no limit')
      : trans.__('limit %1', formatBytes(limit))
  );
  return {
    text:
      limit === null
        ? formatBytes(used)
        : trans.__('%1 of %2', formatBytes(used), formatBytes(limit)),
    used,
    limit,
    warn: limit !== null && used > WARN_FRACTION * limit,
    title
  };
}

/** A running job's CPU use: "4 %", or null before the first sample. */
export function cpuText(job: Pick<IJob, 'status' | 'usage'>): string | null {
  if (
    job.status !== 'running' ||
    !job.usage ||
    job.usage.cpu_percent === null
  ) {
    return null;
  }
  return `${Math.round(job.usage.cpu_percent)} %`;
}

/** What enforces a job's limits, for its card: "limited by cgroup v1", or null. */
export function enforcementText(
  limits: ILimits | null | undefined,
  trans: TranslationBundle
): string | null {
  switch (limits?.enforced_by) {
    case 'cgroup2':
      return trans.__('limited by cgroup v2');
    case 'cgroup1':
      return trans.__('limited by cgroup v1');
    case 'watchdog':
      return trans.__('limited by a watchdog');
    default:
      return null;
  }
}

/**
 * The memory limit to offer a relaunch with, twice the old one, when an ended job's
 * error says it went over its memory limit; null otherwise.
 */
export function doubledMemoryLimit(
  job: Pick<IJob, 'status' | 'error' | 'limits'>
): number | null {
  const limit = job.limits?.memory_bytes ?? null;
  if (
    !ENDED_STATUSES.has(job.status) ||
    limit === null ||
    !/memory limit/i.test(job.error ?? '')
  ) {
    return null;
  }
  return 2 * limit;
}
