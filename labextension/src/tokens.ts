/**
 * Identifiers and the shapes of the server's JSON. No side effects: safe to import
 * from tests and from every other module.
 */

/** The plugin id; also the settings schema's file name (`schema/plugin.json`). */
export const PLUGIN_ID = 'jupyter-forgather-tb:plugin';

/** The gettext domain of the extension's strings, for JupyterLab's translator. */
export const TRANSLATION_DOMAIN = 'jupyter_forgather_tb';

/** The state database key under which the last submitted form is remembered. */
export const STATE_KEY = 'jupyter-forgather-tb:last-launch';

/**
 * The state database key of the scalar tag each log directory's preview shows, when
 * the user picked one: `{ "<log directory>": "<tag>" }`.
 */
export const PREVIEW_TAGS_KEY = 'jupyter-forgather-tb:preview-tags';

/** The sidebar's widget id. */
export const SIDEBAR_ID = 'jp-forgather-tb-sidebar';

/** Command ids. */
export namespace CommandIDs {
  /** Show the sidebar with the launch form focused. */
  export const launch = 'forgather-tb:launch';
  /** Show the sidebar's job list. */
  export const showJobs = 'forgather-tb:show-jobs';
  /** Launch (or reuse) a job on the file browser's selected folder and open it. */
  export const openHere = 'forgather-tb:open-here';
  /** Launch (or reuse) a job comparing the file browser's selected folders, and open it. */
  export const compareHere = 'forgather-tb:compare-here';
  /** Open a job in a main-area tab: args `{ id, title, url }`. */
  export const openJob = 'forgather-tb:open-job';
  /** Open a job's live output in a main-area tab: args `{ id, title }`. */
  export const showOutput = 'forgather-tb:show-output';
  /**
   * Launch a new job with an ended job's options: args `{ id, memoryLimit? }`, the
   * memory limit in bytes or with a K, M, G or T suffix (default: the old job's).
   */
  export const relaunch = 'forgather-tb:relaunch';
}

/** A job's state, as the server names it. */
export type JobStatus =
  | 'queued'
  | 'starting'
  | 'running'
  | 'suspended'
  | 'exited'
  | 'failed'
  | 'killed'
  | 'lost';

/** States after which a job never changes again. */
export const ENDED_STATUSES: ReadonlySet<JobStatus> = new Set([
  'exited',
  'failed',
  'killed',
  'lost'
]);

/**
 * The launch fields of `POST jobs`; `null` or absent means "not given". One of
 * `logdir` and `logdirs` is given.
 */
export interface ILaunchRequest {
  logdir?: string;
  /**
   * Several folders to compare: `{ "name": "path" }`, or paths (named after their
   * folders, made unique); TensorBoard shows their runs as `name/run`.
   */
  logdirs?: Record<string, string> | string[];
  port?: number | string | null;
  host?: string | null;
  bind_all?: boolean | null;
  priority?: number | string | null;
  window_title?: string | null;
  reload_interval?: number | string | null;
  reload_multifile?: boolean | null;
  samples_per_plugin?: string | null;
  load_fast?: LoadFast | null;
  sync_interval?: number | string | null;
  /** A named connection of the server's (`GET connections`) for a remote log directory. */
  connection?: string | null;
  /** Bytes, or a size such as "2G" (binary multiples); absent: the server's default. */
  memory_limit?: number | string;
  force_new?: boolean | null;
}

/** The body of `POST jobs/<id>/relaunch`: the old job's options, with these changed. */
export interface IRelaunchRequest {
  memory_limit?: number | string;
}

/** TensorBoard's loader: the Python one, the Rust data server, or the server's choice. */
export type LoadFast = 'auto' | 'true' | 'false';

/** A job's validated, normalized options. */
export interface IJobOptions {
  logdir: string;
  window_title: string;
  port: number | null;
  priority: number;
  bind_all: boolean;
  host: string | null;
  reload_interval: number | null;
  reload_multifile: boolean | null;
  samples_per_plugin: string | null;
  load_fast: LoadFast;
  sync_interval: number | null;
  /** The named connection a remote log directory is opened with; null: the standard chain. */
  connection?: string | null;
}

/** A remote job's first copy of its source. */
export interface IFirstCopy {
  /** Files copied so far, of `files_total`. */
  files: number;
  files_total: number;
  /** Bytes of the copied files, of `bytes_total`. */
  bytes: number;
  bytes_total: number;
  /** Seconds left, estimated; 0 once done, null until something is copied. */
  eta_seconds: number | null;
  /** Whether the first copy has finished. */
  done: boolean;
}

/** How a remote job's local mirror is doing. */
export interface IMirrorStatus {
  /** Requests made to the store so far. */
  requests?: number;
  /** When the next sync is due (ISO 8601); null while the first copy runs. */
  next_sync?: string | null;
  /** The first copy's progress; null before its listing. */
  progress?: IFirstCopy | null;
  last_sync: string | null;
  objects: number;
  bytes: number;
  bytes_fetched: number;
  syncs: number;
  /** Keys the last listing left out (the first 20), and how many in all. */
  skipped: ISkippedKey[];
  skipped_count: number;
  last_error: string | null;
}

/** A key an S3 mirror left out, and why. */
export interface ISkippedKey {
  key: string;
  reason: string;
}

/** A job, as `GET jobs/<id>` answers it. */
export interface IJob {
  id: string;
  label: string;
  status: JobStatus;
  options: IJobOptions;
  /** Where the browser opens it: `<base_url>tb/<id>/`, an absolute path. */
  url: string;
  pid: number | null;
  port: number | null;
  transport: 'unix' | 'tcp';
  /** True with `bind_all`: reachable from other machines without Jupyter's login. */
  network_exposed: boolean;
  /**
   * Who can read it without Jupyter's login: nobody else (`none`), every user of this
   * machine (`local`: a loopback TCP port, or a Rust loader outside a private network),
   * or anyone who can reach the machine (`network`: `bind_all`).
   */
  exposure: 'none' | 'local' | 'network';
  created: string;
  started: string | null;
  ended: string | null;
  exit_code: number | null;
  error: string | null;
  output_tail: string[];
  queue_position: number | null;
  last_activity: string | null;
  adopted: boolean;
  logdir_exists: boolean | null;
  /** An s3:// job's mirror; null for other jobs. */
  mirror: IMirrorStatus | null;
  /** The loader its process reported before serving; null until then. */
  loader: ILoader | null;
  /** The resource limits the job runs under. */
  limits: ILimits;
  /** What the job's processes use, sampled while it runs; null otherwise. */
  usage: IUsage | null;
  /** Why a queued job waits, such as "waiting for memory: 3.5 of 4 GiB in use". */
  queue_reason: string | null;
  /** How its log directory's event files are doing; null until the first scan. */
  activity: IActivity | null;
  /** A compare job's folders, `{ "name": "path" }`; absent or null for others. */
  logdirs?: Record<string, string> | null;
}

/**
 * Whether a job's event files are being written: none yet (`waiting`), one grew
 * within the server's live window (`live`), or none since (`idle`).
 */
export type ActivityState = 'waiting' | 'live' | 'idle';

/** A scan of a job's log directory. */
export interface IActivity {
  runs: number;
  event_files: number;
  event_bytes: number;
  /** When an event file last grew (ISO 8601), or null. */
  last_write: string | null;
  state: ActivityState;
  /** True once a live job has had no new events for the server's `stall_after`. */
  stalled: boolean;
}

/** The answer to `GET jobs/<id>/preview`: one scalar tag's points for a few runs. */
export interface IPreview {
  /** The tag shown; empty when the job has no scalars yet. */
  tag: string;
  /** Every scalar tag of the job, to pick another from. */
  tags: string[];
  /** Each run's `[step, value]` points, in step order; a NaN or infinity is null. */
  runs: Record<string, [number, number | null][]>;
  /** While suspended (no process; the next request wakes it), since when. */
  suspended_at: string | null;
  /** How many times it was woken from suspension. */
  wakes: number;
}

/** How a job's limits are enforced: a control group (v2 or v1), or a watchdog. */
export type Enforcement = 'cgroup2' | 'cgroup1' | 'watchdog';

/** A job's resource limits; null fields are not limited. */
export interface ILimits {
  /** The memory cap in bytes; null: no cap. */
  memory_bytes: number | null;
  cpu_nice: number | null;
  /** The CPU cap, in cores. */
  cpu_limit: number | null;
  enforced_by: Enforcement | null;
}

/** A sample of what a running job's processes use. */
export interface IUsage {
  rss_bytes: number;
  pss_bytes: number | null;
  /** Percent of one core, so above 100 on several. */
  cpu_percent: number | null;
  peak_bytes: number;
  /** Seconds since the epoch. */
  sampled_at: number;
}

/** Which loader a job's TensorBoard got, and whether in a network of its own. */
export interface ILoader {
  name: 'rust' | 'python';
  /** Without it, a Rust loader's loopback port is open to local users. */
  private_network: boolean;
}

/** The answer to `POST jobs`. */
export interface ILaunchResult extends IJob {
  reused: boolean;
}

/** One directory holding runs, from `GET logdirs`. */
export interface ILogdirEntry {
  path: string;
  runs: number;
  last_modified: number;
}

/** A named connection of the server, without its secrets (`GET connections`). */
export interface IConnection {
  name: string;
  /** The URL scheme it opens: s3, gs, az or ssh. */
  protocol: string;
  /** Its settings that hold no secret (endpoint, region, host...). */
  settings: Record<string, unknown>;
}

/** The answer to `GET logdirs`. */
export interface ILogdirList {
  path: string;
  logdirs: ILogdirEntry[];
  truncated: boolean;
}

/** A piece of a job's output, from `GET jobs/<id>/output` or its event stream. */
export interface IOutputChunk {
  offset: number;
  next_offset: number;
  text: string;
  dropped: boolean;
  complete: boolean;
  status: JobStatus;
}

/** Who a job is shared with, under JupyterHub (the server's `Share`). */
export interface IShare {
  id: string;
  kind: 'user' | 'group' | 'link';
  /** The user or group; null for a link. */
  name: string | null;
  created: string;
  expires_at: string | null;
  /** A link share's URL: JupyterHub's accept page, on the Hub's address. */
  url?: string | null;
  /** Users let in by a link or a group share. */
  visitors?: string[];
}

/** A job's shares, and whether sharing works on this server (`reason` if not). */
export interface IShareListing {
  enabled: boolean;
  reason: string | null;
  shares: IShare[];
}

/** What to share a job with: exactly one of `user`, `group` and `link`. */
export interface IShareRequest {
  user?: string;
  group?: string;
  link?: true;
  expires_in?: number;
}

/** A server someone shares with this server's owner, and its page of shared jobs. */
export interface ISharedServer {
  owner: string | null;
  server: string;
  ready: boolean;
  url: string | null;
}
