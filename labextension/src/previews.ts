/**
 * Each running job's scalar preview, fetched through the server only while the
 * sidebar is shown, with the tag the user picked for its log directory.
 */
import { IStateDB } from '@jupyterlab/statedb';
import { ReadonlyJSONObject } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { ApiError } from './api';
import { JobsModel } from './model';
import { ENDED_STATUSES, IJob, IPreview, PREVIEW_TAGS_KEY } from './tokens';

/** How old a live job's preview may get, in milliseconds (TensorBoard reloads every 5 s). */
export const LIVE_PREVIEW_AGE = 5000;

/** How old an idle job's preview may get: nothing new is written. */
export const IDLE_PREVIEW_AGE = 30000;

/** How many log directories' picked tags are remembered (the latest picks). */
export const REMEMBERED_TAGS = 100;

/** A job's last preview and when it was asked for. */
export interface IPreviewEntry {
  preview: IPreview | null;
  requestedAt: number;
  pending: boolean;
}

/**
 * Whether a job's preview should be fetched now: a running job with event files
 * (or not scanned yet), not fetched yet or fetched longer ago than its state warrants,
 * and no request on the way.
 */
export function previewDue(
  job: Pick<IJob, 'status' | 'activity'>,
  entry: IPreviewEntry | undefined,
  now: number
): boolean {
  if (job.status !== 'running' || job.activity?.state === 'waiting') {
    return false;
  }
  if (!entry) {
    return true;
  }
  const maxAge =
    job.activity?.state === 'idle' ? IDLE_PREVIEW_AGE : LIVE_PREVIEW_AGE;
  return !entry.pending && now - entry.requestedAt >= maxAge;
}

/** What a picked tag is remembered under: the job's log directory, or its compared folders. */
export function logdirKey(job: Pick<IJob, 'options' | 'logdirs'>): string {
  const members = Object.entries(job.logdirs ?? {});
  if (!members.length) {
    return job.options.logdir;
  }
  return members
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, path]) => `${name}=${path}`)
    .join('\n');
}

/**
 * Picked tags as the state database held them: string entries only, the latest
 * `REMEMBERED_TAGS`, so a value saved by another version cannot break the previews.
 */
export function restoreTags(saved: unknown): Map<string, string> {
  const tags = new Map<string, string>();
  if (saved && typeof saved === 'object' && !Array.isArray(saved)) {
    for (const [key, tag] of Object.entries(saved)) {
      if (typeof tag === 'string' && tag) {
        tags.set(key, tag);
      }
    }
  }
  return new Map([...tags].slice(-REMEMBERED_TAGS));
}

/** The tag picked for each log directory, kept in JupyterLab's state database. */
export class TagMemory {
  constructor(private readonly _state: IStateDB | null) {
    this.ready = (
      _state ? _state.fetch(PREVIEW_TAGS_KEY) : Promise.resolve(undefined)
    ).then(
      saved => {
        this._tags = restoreTags(saved);
      },
      () => undefined
    );
  }

  /** Settles once the remembered tags are read (or could not be). */
  readonly ready: Promise<void>;

  /** The tag picked for a log directory, if any. */
  get(key: string): string | undefined {
    return this._tags.get(key);
  }

  /** Remember a pick, or forget it (`null`). */
  set(key: string, tag: string | null): void {
    this._tags.delete(key);
    if (tag) {
      this._tags.set(key, tag);
    }
    this._tags = new Map([...this._tags].slice(-REMEMBERED_TAGS));
    void this._state
      ?.save(
        PREVIEW_TAGS_KEY,
        Object.fromEntries(this._tags) as ReadonlyJSONObject
      )
      .catch(reason => console.warn('preview tags not saved', reason));
  }

  private _tags = new Map<string, string>();
}

/** The previews of the listed jobs, refreshed with the job list while it is shown. */
export class PreviewsModel implements IDisposable {
  constructor(
    private readonly _jobs: JobsModel,
    private readonly _tags: TagMemory
  ) {
    _jobs.changed.connect(this._onJobs, this);
  }

  /** Emitted when a preview changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** A job's last preview, or null before the first. */
  preview(id: string): IPreview | null {
    return this._entries.get(id)?.preview ?? null;
  }

  /** Show `tag` for a job, and remember it for the job's log directory. */
  pick(job: IJob, tag: string): Promise<void> {
    this._tags.set(logdirKey(job), tag);
    return this._fetch(job);
  }

  dispose(): void {
    if (!this._disposed) {
      this._disposed = true;
      Signal.clearData(this);
    }
  }

  private _onJobs(): void {
    const listed = new Map(this._jobs.jobs.map(job => [job.id, job]));
    let dropped = false;
    for (const id of [...this._entries.keys()]) {
      const job = listed.get(id);
      if (!job || ENDED_STATUSES.has(job.status)) {
        this._entries.delete(id);
        dropped = true;
      }
    }
    if (dropped) {
      this._changed.emit();
    }
    if (!this._jobs.shown) {
      return; // a background refresh (for stall notices): no preview
    }
    const now = Date.now();
    for (const job of listed.values()) {
      if (previewDue(job, this._entries.get(job.id), now)) {
        void this._fetch(job);
      }
    }
  }

  /** Fetch a job's preview with its log directory's tag; the last request wins. */
  private async _fetch(job: IJob): Promise<void> {
    const entry: IPreviewEntry = {
      preview: this.preview(job.id),
      requestedAt: Date.now(),
      pending: true
    };
    this._entries.set(job.id, entry);
    await this._tags.ready;
    const key = logdirKey(job);
    let preview: IPreview | null = null;
    try {
      preview = await this._jobs.api.preview(job.id, this._tags.get(key));
    } catch (error) {
      if (
        error instanceof ApiError &&
        error.response.status === 400 &&
        this._tags.get(key)
      ) {
        // The picked tag is gone (another run set, say): back to the default.
        this._tags.set(key, null);
        try {
          preview = await this._jobs.api.preview(job.id);
        } catch {
          // Kept as it was; tried again when next due.
        }
      }
      // 409 (the job is not running) and the rest: keep the last preview.
    }
    if (this._disposed || this._entries.get(job.id) !== entry) {
      return; // the job left the list, or a newer request took over
    }
    entry.pending = false;
    if (preview) {
      entry.preview = preview;
      this._changed.emit();
    }
  }

  private _changed = new Signal<this, void>(this);
  private _disposed = false;
  private _entries = new Map<string, IPreviewEntry>();
}
