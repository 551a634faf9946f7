/**
 * The launch form's logic, kept apart from React and JupyterLab so it can be tested
 * alone: the values as typed, defaults from settings, the request they make, and how
 * jobs are described in the list.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import {
  IJob,
  ILaunchRequest,
  ILoader,
  IMirrorStatus,
  JobStatus,
  LoadFast
} from './tokens';

/** The form's values as the inputs hold them, keyed by the REST field they fill. */
export interface IFormValues {
  logdir: string;
  port: string;
  priority: string;
  bind_all: boolean;
  window_title: string;
  reload_interval: string;
  reload_multifile: 'default' | 'on' | 'off';
  samples_per_plugin: string;
  host: string;
  load_fast: LoadFast;
  sync_interval: string;
  /** Blank or absent: the server's default. */
  memory_limit?: string;
  /** Folders ticked in the Runs… picker; two or more are launched as one comparison. */
  logdirs?: string[];
}

/** The form's names, in the order the server checks them. */
export type FieldName = keyof IFormValues;

/** Defaults as the settings registry holds them (see `schema/plugin.json`). */
export interface ILaunchDefaults {
  logdir?: string;
  port?: number | null;
  priority?: number;
  bindAll?: boolean;
  reloadInterval?: number | null;
  reloadMultifile?: boolean | null;
  samplesPerPlugin?: string;
  host?: string;
  loadFast?: LoadFast;
  syncInterval?: number | null;
  memoryLimit?: string;
}

/** The form when nothing is set anywhere. */
export const EMPTY_VALUES: Readonly<IFormValues> = {
  logdir: '',
  port: '',
  priority: '0',
  bind_all: false,
  window_title: '',
  reload_interval: '',
  reload_multifile: 'default',
  samples_per_plugin: '',
  host: '',
  load_fast: 'auto',
  sync_interval: '',
  memory_limit: undefined,
  logdirs: undefined
};

const show = (value: number | null | undefined): string =>
  value === null || value === undefined ? '' : String(value);

/** The form's values for the defaults of the settings registry. */
export function valuesFromDefaults(defaults: ILaunchDefaults): IFormValues {
  return {
    ...EMPTY_VALUES,
    logdir: defaults.logdir ?? '',
    port: show(defaults.port),
    priority: show(defaults.priority ?? 0),
    bind_all: defaults.bindAll ?? false,
    reload_interval: show(defaults.reloadInterval),
    reload_multifile:
      defaults.reloadMultifile === true
        ? 'on'
        : defaults.reloadMultifile === false
          ? 'off'
          : 'default',
    samples_per_plugin: defaults.samplesPerPlugin ?? '',
    host: defaults.host ?? '',
    load_fast: defaults.loadFast ?? 'auto',
    sync_interval: show(defaults.syncInterval),
    memory_limit: defaults.memoryLimit?.trim() || undefined
  };
}

/**
 * Values remembered in the state database, over `base`: only known fields of the
 * right type are taken, so a value saved by another version cannot break the form.
 */
export function restoreValues(saved: unknown, base: IFormValues): IFormValues {
  const values = { ...base };
  if (!saved || typeof saved !== 'object') {
    return values;
  }
  const record = saved as Record<string, unknown>;
  for (const key of Object.keys(EMPTY_VALUES) as FieldName[]) {
    const value = record[key];
    if (key === 'bind_all') {
      if (typeof value === 'boolean') {
        values.bind_all = value;
      }
    } else if (key === 'reload_multifile') {
      if (value === 'default' || value === 'on' || value === 'off') {
        values.reload_multifile = value;
      }
    } else if (key === 'load_fast') {
      if (value === 'auto' || value === 'true' || value === 'false') {
        values.load_fast = value;
      }
    } else if (key === 'logdirs') {
      if (Array.isArray(value)) {
        values.logdirs = value.filter(path => typeof path === 'string');
      }
    } else if (typeof value === 'string') {
      values[key] = value;
    }
  }
  return values;
}

/**
 * A number typed in a field: blank is "not given", a number is sent as one, and
 * anything else is sent as typed so the server's own message explains what is wrong.
 */
function numberField(text: string): number | string | null {
  const trimmed = text.trim();
  if (!trimmed) {
    return null;
  }
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : trimmed;
}

const optionalText = (text: string): string | null => text.trim() || null;

/**
 * A size typed in a field: blank is left out (the server's default), digits are
 * bytes, and anything else ("2G", "512M") is sent as typed for the server to read.
 */
function sizeField(text: string | undefined): number | string | undefined {
  const trimmed = text?.trim();
  if (!trimmed) {
    return undefined;
  }
  return /^[0-9]+$/.test(trimmed) && Number.isSafeInteger(Number(trimmed))
    ? Number(trimmed)
    : trimmed;
}

/** The folders the form compares: those ticked, when there are two or more. */
export function comparedLogdirs(values: IFormValues): string[] | null {
  return values.logdirs && values.logdirs.length > 1 ? values.logdirs : null;
}

/** Tick or untick a folder of the Runs… picker. */
export function toggleLogdir(
  ticked: readonly string[] | undefined,
  path: string
): string[] {
  const list = ticked ?? [];
  return list.includes(path)
    ? list.filter(known => known !== path)
    : [...list, path];
}

/**
 * The `POST jobs` body for the form's values: `logdirs` for two or more ticked
 * folders, else `logdir`. The server validates every field.
 */
export function toLaunchRequest(values: IFormValues): ILaunchRequest {
  const compared = comparedLogdirs(values);
  return {
    ...(compared ? { logdirs: compared } : { logdir: values.logdir.trim() }),
    port: numberField(values.port),
    priority: numberField(values.priority),
    bind_all: values.bind_all,
    window_title: optionalText(values.window_title),
    reload_interval: numberField(values.reload_interval),
    reload_multifile:
      values.reload_multifile === 'default'
        ? null
        : values.reload_multifile === 'on',
    samples_per_plugin: optionalText(values.samples_per_plugin),
    // The host applies to a port on loopback only; bind-all listens everywhere.
    host: values.bind_all ? null : optionalText(values.host),
    load_fast: values.load_fast,
    // The server refuses a sync interval for anything but an S3 log directory.
    sync_interval:
      !compared && isS3(values.logdir)
        ? numberField(values.sync_interval)
        : null,
    memory_limit: sizeField(values.memory_limit)
  };
}

/** Whether a log directory is in S3 (mirrored, with a sync interval). */
export function isS3(logdir: string): boolean {
  return /^s3:\/\//i.test(logdir.trim());
}

/** An S3 mirror's state in a line: "12 objects, 1 skipped, 3.4 MB, synced 5 s ago". */
export function mirrorText(
  mirror: IMirrorStatus,
  trans: TranslationBundle,
  now: number = Date.now()
): string {
  const synced = mirror.last_sync
    ? trans.__('synced %1 ago', age(mirror.last_sync, trans, now))
    : trans.__('not synced yet');
  const objects = trans._n('%1 object', '%1 objects', mirror.objects);
  return mirror.skipped_count
    ? trans.__(
        '%1, %2 skipped, %3, %4',
        objects,
        mirror.skipped_count,
        size(mirror.bytes),
        synced
      )
    : trans.__('%1, %2, %3', objects, size(mirror.bytes), synced);
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

/** A byte count for people: "812 B", "3.4 MB". */
export function size(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** The form field a server error names, or null when it names none of them. */
export function fieldOf(serverField: string | null): FieldName | null {
  return serverField && serverField in EMPTY_VALUES
    ? (serverField as FieldName)
    : null;
}

/** The window title TensorBoard gets when the field is left blank. */
export function defaultTitle(logdir: string): string {
  const parts = logdir
    .trim()
    .split(/[\\/]+/)
    .filter(Boolean);
  return parts.length ? parts[parts.length - 1] : 'TensorBoard';
}

/**
 * The window title a comparison gets when the field is left blank, as the server
 * names it: "compare: " and each folder's last part (made unique), in name order.
 */
export function compareTitle(paths: readonly string[]): string {
  const names: string[] = [];
  for (const path of paths) {
    const last =
      path
        .trim()
        .split(/[\\/]+/)
        .filter(Boolean)
        .pop() ?? '';
    const base = ['', '.', '..', '~'].includes(last) ? path : last;
    let name = base;
    for (let count = 2; names.includes(name); count++) {
      name = `${base}-${count}`;
    }
    names.push(name);
  }
  return `compare: ${names.sort().join(', ')}`;
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
