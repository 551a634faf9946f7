/**
 * TensorBoard in a main-area tab: its proxied page in an IFrame while its job runs,
 * and a panel saying what happened when it does not (see `gonePanel.tsx`).
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { IFrame, ReactWidget } from '@jupyterlab/ui-components';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import { Panel } from '@lumino/widgets';
import * as React from 'react';

import { ApiError } from '../api';
import { tensorboardIcon } from '../icons';
import { JobsModel } from '../model';
import {
  IKnownOptions,
  isJobOptions,
  launchAgainRequest,
  stateOf,
  successor,
  TabState
} from '../tabState';
import { IJob } from '../tokens';
import { GonePanel } from './gonePanel';

/** The restorable description of a TensorBoard tab. */
export interface ITensorBoardViewArgs {
  /** The job it shows. */
  id: string;
  /**
   * The job it was opened for, which names the tab for good (`forgather-tb-<tab>`, as
   * the workspace's layout knows it); absent: `id`.
   */
  tab?: string;
  title: string;
  /** The job's `url`: a path on the server (`<base_url>tb/<id>/`). */
  url: string;
  /** The job's options once the tab has seen them, to launch it again elsewhere. */
  options?: ReadonlyPartialJSONObject | null;
}

/** What a tab needs from the plugin. */
export interface ITensorBoardViewOptions {
  model: JobsModel;
  trans: TranslationBundle;
  args: ITensorBoardViewArgs;
  /** Open a job's output. */
  showOutput: (job: IJob) => void;
  /** Show the sidebar's launch form. */
  openSidebar: () => void;
}

/** The panel's widget: renders whatever the view says. */
class PanelWidget extends ReactWidget {
  constructor(private readonly _renderPanel: () => JSX.Element | null) {
    super();
  }

  protected render(): JSX.Element | null {
    return this._renderPanel();
  }
}

/**
 * One job's TensorBoard. While shown, it follows its job through the job list: it
 * shows a panel once the job has ended, or when the server does not know it, and it
 * moves to the job's relaunch (a live job serving the same TensorBoard) when there is one.
 */
export class TensorBoardView extends Panel {
  constructor(options: ITensorBoardViewOptions) {
    super();
    this._model = options.model;
    this._options = options;
    const { args } = options;
    this._args = {
      ...args,
      tab: args.tab || args.id,
      options: isJobOptions(args.options) ? args.options : null
    };
    this.addClass('jp-ForgatherTB-view');
    // TensorBoard is served from this origin through Jupyter's login, and its page needs
    // scripts and its own XHRs with that login: same-origin scripts, popups for its links.
    this._frame = new IFrame({
      sandbox: [
        'allow-scripts',
        'allow-same-origin',
        'allow-forms',
        'allow-downloads',
        'allow-popups'
      ],
      referrerPolicy: 'same-origin'
    });
    this._frame.addClass('jp-ForgatherTB-frame');
    this._frame.hide();
    this._panel = new PanelWidget(() => this._render());
    this._panel.addClass('jp-ForgatherTB-gonePanel');
    this.addWidget(this._frame);
    this.addWidget(this._panel);
  }

  /** The tab's job, title, URL and options, as a workspace saves them. */
  get args(): ITensorBoardViewArgs {
    return this._args;
  }

  /** Emitted when the tab moves to another job, or learns more about its own. */
  get argsChanged(): ISignal<this, ITensorBoardViewArgs> {
    return this._argsChanged;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._stopWatching();
    super.dispose();
    Signal.clearData(this);
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      this._startWatching();
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._startWatching();
  }

  protected onBeforeHide(msg: Message): void {
    this._stopWatching();
    super.onBeforeHide(msg);
  }

  protected onBeforeDetach(msg: Message): void {
    this._stopWatching();
    super.onBeforeDetach(msg);
  }

  /** Watch the job list while shown (the list polls only while someone looks). */
  private _startWatching(): void {
    if (this._watching) {
      return;
    }
    this._watching = this._model.watch();
    this._model.changed.connect(this._onListChanged, this);
    void this._check();
  }

  private _stopWatching(): void {
    if (this._watching) {
      this._model.changed.disconnect(this._onListChanged, this);
      this._watching.dispose();
      this._watching = null;
    }
  }

  /** Ask the server about the tab's job. */
  private async _check(): Promise<void> {
    const id = this._args.id;
    const asked = ++this._asked;
    let state: TabState;
    try {
      state = stateOf(await this._model.api.getJob(id));
    } catch (error) {
      if (error instanceof ApiError && error.response.status === 404) {
        // Removed from the list after it ended: what was last seen still holds.
        state =
          this._state.kind === 'ended' ? this._state : { kind: 'unknown' };
      } else if (this._state.kind === 'checking') {
        state = { kind: 'unreachable', message: (error as Error).message };
      } else {
        return; // keep showing what was last known; the list poll retries
      }
    }
    if (asked === this._asked && id === this._args.id && !this.isDisposed) {
      this._show(state);
      this._followSuccessor();
    }
  }

  private _onListChanged(model: JobsModel): void {
    if (model.error) {
      return;
    }
    const job = model.jobs.find(known => known.id === this._args.id);
    if (job) {
      this._show(stateOf(job));
    } else if (this._state.kind === 'live' || this._state.kind === 'waiting') {
      void this._check(); // no longer listed: ask why
    }
    this._followSuccessor();
  }

  /** Move to the relaunch of an ended (or unknown) job, if the list has one. */
  private _followSuccessor(): void {
    const options = this._knownOptions();
    if (
      options &&
      (this._state.kind === 'ended' || this._state.kind === 'unknown')
    ) {
      const next = successor(options, this._model.jobs, this._args.id);
      if (next) {
        this._follow(next);
      }
    }
  }

  /** Show another job from now on. */
  private _follow(job: IJob): void {
    this._asked++; // an answer about the old job no longer applies
    this._show(stateOf(job));
  }

  private _show(state: TabState): void {
    const job = 'job' in state ? state.job : null;
    if (job) {
      this._remember(job);
    }
    const wasLive = this._state.kind === 'live';
    this._state = state;
    if (state.kind === 'live') {
      const src = this._model.api.jobUrl({ url: state.job.url });
      if (!wasLive || this._frame.url !== src) {
        this._frame.url = src;
      }
      this._panel.hide();
      this._frame.show();
    } else {
      if (state.kind !== 'unreachable' && this._frame.url !== 'about:blank') {
        // Stop the page's polling of a TensorBoard that is not there.
        this._frame.url = 'about:blank';
      }
      this._frame.hide();
      this._panel.show();
    }
    this._panel.update();
  }

  /** Take a job's id, title, URL and options as the tab's own. */
  private _remember(job: IJob): void {
    const args: ITensorBoardViewArgs = {
      id: job.id,
      tab: this._args.tab,
      title: job.label,
      url: job.url,
      options: job.options as unknown as ReadonlyPartialJSONObject
    };
    if (JSON.stringify(args) !== JSON.stringify(this._args)) {
      this._args = args;
      this._argsChanged.emit(args);
    }
  }

  private async _launch(start: () => Promise<IJob>): Promise<void> {
    this._busy = true;
    this._error = null;
    this._panel.update();
    try {
      const job = await start();
      this._follow(job);
      this._model.update(job);
    } catch (error) {
      this._error = (error as Error).message;
    } finally {
      this._busy = false;
      this._panel.update();
    }
  }

  /** The tab's job options, when known. */
  private _knownOptions(): IKnownOptions | null {
    const options = this._args.options;
    return isJobOptions(options) ? options : null;
  }

  private _render(): JSX.Element | null {
    const state = this._state;
    if (state.kind === 'live') {
      return null;
    }
    const options = this._knownOptions();
    return React.createElement(GonePanel, {
      state,
      trans: this._options.trans,
      jobId: this._args.id,
      logdir: options?.logdir ?? null,
      busy: this._busy,
      error: this._error,
      onRelaunch: job =>
        void this._launch(() => this._model.api.relaunch(job.id)),
      onLaunchAgain: options
        ? () =>
            void this._launch(() =>
              this._model.api.launch(launchAgainRequest(options))
            )
        : null,
      onShowOutput: this._options.showOutput,
      onOpenSidebar: this._options.openSidebar,
      onRetry: () => void this._check()
    });
  }

  private _args: ITensorBoardViewArgs;
  private readonly _argsChanged = new Signal<this, ITensorBoardViewArgs>(this);
  private _asked = 0;
  private _busy = false;
  private _error: string | null = null;
  private readonly _frame: IFrame;
  private readonly _model: JobsModel;
  private readonly _options: ITensorBoardViewOptions;
  private readonly _panel: ReactWidget;
  private _state: TabState = { kind: 'checking' };
  private _watching: IDisposable | null = null;
}

/** A main-area tab showing one job's TensorBoard. */
export function createTensorBoardView(
  options: ITensorBoardViewOptions
): MainAreaWidget<TensorBoardView> {
  const content = new TensorBoardView(options);
  const widget = new MainAreaWidget({ content });
  widget.id = `forgather-tb-${content.args.tab}`;
  const name = (args: ITensorBoardViewArgs) => {
    widget.title.label = args.title;
    widget.title.caption = options.trans.__('TensorBoard: %1', args.title);
  };
  name(content.args);
  content.argsChanged.connect((_, args) => name(args));
  widget.title.icon = tensorboardIcon;
  widget.title.closable = true;
  return widget;
}
