/**
 * Stall notices: one JupyterLab notification per stall of a running job's log
 * directory, naming the job, with an action to open it; withdrawn when events come again.
 * The stalls told are kept in the browser tab's session storage, so a reload does not
 * tell them again.
 */
import { Notification } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { IDisposable } from '@lumino/disposable';

import { stallChanges, stallKey, stallMessage, toldStalls } from './activity';
import { JobsModel } from './model';
import { IJob } from './tokens';

/** Watches the job list for stalls and tells the user of each once. */
export class StallNotices implements IDisposable {
  constructor(
    private readonly _model: JobsModel,
    private readonly _open: (job: IJob) => void,
    private readonly _trans: TranslationBundle
  ) {
    _model.changed.connect(this._check, this);
    this._told = new Set(loadTold());
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (!this._disposed) {
      this._disposed = true;
      this._model.changed.disconnect(this._check, this);
    }
  }

  private _check(): void {
    const { show, withdraw } = stallChanges(
      this._model.jobs,
      new Set(this._notices.keys())
    );
    for (const id of withdraw) {
      const notice = this._notices.get(id);
      if (notice) {
        Notification.dismiss(notice); // without an id it would dismiss them all
      }
      this._notices.delete(id);
    }
    const trans = this._trans;
    const told = toldStalls(this._model.jobs, this._told);
    for (const job of show.filter(job => !told.has(stallKey(job)))) {
      told.add(stallKey(job));
      const notice = Notification.warning(stallMessage(job, trans), {
        autoClose: false,
        actions: [
          {
            label: trans.__('Open TensorBoard'),
            caption: trans.__('Open “%1” in a tab', job.label),
            callback: () => this._open(job)
          }
        ]
      });
      this._notices.set(job.id, notice);
    }
    this._told = told;
    saveTold(told);
  }

  private _disposed = false;
  /** The notice shown for each stalled job, by job id. */
  private _notices = new Map<string, string>();
  /** The stalls told in this browser tab, by `stallKey`. */
  private _told: Set<string>;
}

const STORAGE_KEY = 'jupyter-forgather-tb:stalls-told';

function loadTold(): string[] {
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? '[]');
    return Array.isArray(saved)
      ? saved.filter(key => typeof key === 'string')
      : [];
  } catch {
    return []; // no storage (a sandboxed frame) or not ours: tell them again
  }
}

function saveTold(told: ReadonlySet<string>): void {
  try {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify([...told]));
  } catch {
    // Storage refused (full, or none): a reload tells the stalls again.
  }
}
