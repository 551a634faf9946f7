/**
 * The live job list: polls the server while someone looks at it, and now and then
 * while a job runs (for its stall notices).
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { TensorBoardAPI } from './api';
import { IJob } from './tokens';

/**
 * Jobs as the server last listed them, refreshed by a poll that idles when unseen,
 * except every `background` milliseconds while a listed job runs (once `start` is called).
 */
export class JobsModel implements IDisposable {
  constructor(
    readonly api: TensorBoardAPI,
    options: { interval?: number; background?: number } = {}
  ) {
    this._background = options.background ?? 30 * 1000;
    this._poll = new Poll({
      auto: false,
      factory: () => this._fetch(),
      frequency: {
        interval: options.interval ?? 2000,
        backoff: true,
        max: 30 * 1000
      },
      name: 'jupyter-forgather-tb:jobs',
      // Stop while no view shows the list (but for a background refresh when one is
      // due), and while the browser tab is hidden.
      standby: () =>
        this._viewers > 0 || this._backgroundDue() ? 'when-hidden' : true
    });
  }

  /** Emitted when the list or the last error changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The jobs, oldest first. */
  get jobs(): readonly IJob[] {
    return this._jobs;
  }

  /** Why the last refresh failed, or null. */
  get error(): string | null {
    return this._error;
  }

  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  /** Whether a view shows the list now. */
  get shown(): boolean {
    return this._viewers > 0;
  }

  /** Set how often the list is fetched while shown, in milliseconds. */
  set interval(value: number) {
    this._poll.frequency = { ...this._poll.frequency, interval: value };
  }

  /**
   * Count a view that shows the list; returns a disposable to call when it hides.
   * The poll runs only while at least one view is shown.
   */
  watch(): IDisposable {
    this._viewers++;
    if (this._viewers === 1) {
      // The first view starts the poll; a view shown again fetches at once.
      void (this._poll.state.phase === 'constructed'
        ? this._poll.start()
        : this._poll.refresh());
    }
    let done = false;
    return {
      get isDisposed() {
        return done;
      },
      dispose: () => {
        if (!done) {
          done = true;
          this._viewers--;
        }
      }
    };
  }

  /**
   * Fetch the list once, and keep refreshing it in the background while a listed job
   * runs, so stalls are noticed with the sidebar closed.
   */
  start(): void {
    void this.refresh();
    if (this._poll.state.phase === 'constructed') {
      void this._poll.start();
    }
  }

  /** Fetch the list now (after a launch or a kill, say). */
  async refresh(): Promise<void> {
    try {
      await this._fetch();
    } catch {
      // Kept in `error` for the views; the poll retries on its own schedule.
    }
  }

  /** Merge one job's newer state without waiting for the next poll. */
  update(job: IJob): void {
    const index = this._jobs.findIndex(known => known.id === job.id);
    this._jobs =
      index < 0
        ? [...this._jobs, job]
        : [...this._jobs.slice(0, index), job, ...this._jobs.slice(index + 1)];
    this._changed.emit();
  }

  dispose(): void {
    this._poll.dispose();
    Signal.clearData(this);
  }

  private _backgroundDue(): boolean {
    return (
      this._background > 0 &&
      Date.now() - this._fetched >= this._background &&
      this._jobs.some(job => job.status === 'running')
    );
  }

  private async _fetch(): Promise<void> {
    this._fetched = Date.now();
    try {
      this._jobs = await this.api.listJobs();
      this._error = null;
    } catch (error) {
      this._error = (error as Error).message;
      this._changed.emit();
      throw error; // the poll backs off
    }
    this._changed.emit();
  }

  private _background: number;
  private _changed = new Signal<this, void>(this);
  private _fetched = 0;
  private _error: string | null = null;
  private _jobs: IJob[] = [];
  private _poll: Poll;
  private _viewers = 0;
}

/**
 * Wait until a new job has left `starting` (or has stayed queued for a while, which
 * means it waits for a free slot); resolves with its state then.
 */
export async function waitSettled(
  api: TensorBoardAPI,
  id: string,
  interval = 400
): Promise<IJob> {
  let queuedPolls = 0;
  for (;;) {
    const job = await api.getJob(id);
    if (job.status === 'queued') {
      queuedPolls++;
    }
    if (
      job.status !== 'starting' &&
      (job.status !== 'queued' || queuedPolls > 2)
    ) {
      return job;
    }
    await new Promise(resolve => setTimeout(resolve, interval));
  }
}
