/**
 * The launch form's logic, kept apart from React and JupyterLab so it can be tested
 * alone: the values as typed, defaults from settings, and the request they make.
 */
import { ILaunchRequest, LoadFast } from './tokens';

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
  /** The named connection for a remote log directory; blank: the standard credentials. */
  connection?: string;
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
  connection: undefined,
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
  const remote = !compared && isRemote(values.logdir);
  const connection = remote ? values.connection?.trim() : '';
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
    // The server refuses a sync interval for anything but a remote log directory.
    sync_interval: remote ? numberField(values.sync_interval) : null,
    ...(connection ? { connection } : {}),
    memory_limit: sizeField(values.memory_limit)
  };
}

/** The URL schemes of remote log directories, and the protocol each stands for. */
const REMOTE_SCHEMES: Record<string, string> = {
  s3: 's3',
  gs: 'gs',
  gcs: 'gs',
  az: 'az',
  abfs: 'az',
  abfss: 'az',
  ssh: 'ssh',
  sftp: 'ssh'
};

/**
 * The protocol of a remote log directory (`s3`, `gs`, `az` or `ssh`), or null for a
 * local path (or a scheme the server does not take).
 */
export function remoteProtocol(logdir: string): string | null {
  const match = /^([a-z][a-z0-9+.-]*):\/\//i.exec(logdir.trim());
  return match ? (REMOTE_SCHEMES[match[1].toLowerCase()] ?? null) : null;
}

/** Whether a log directory is remote (mirrored by its job, with a sync interval). */
export function isRemote(logdir: string): boolean {
  return remoteProtocol(logdir) !== null;
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
