/**
 * The left-area panel: the launch form above the live job list.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import { IDisposable } from '@lumino/disposable';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { IFormValues } from '../form';
import { JobsModel } from '../model';
import { PreviewsModel } from '../previews';
import { IJob } from '../tokens';
import { tensorboardIcon } from '../icons';
import { JobList } from './jobList';
import { LaunchForm } from './launchForm';
import { openShareDialog } from './shareDialog';
import { SharedWithYou } from './sharedWithYou';

/** What the panel needs from the plugin. */
export interface ISidebarOptions {
  model: JobsModel;
  trans: TranslationBundle;
  /** The running jobs' scalar previews. */
  previews: PreviewsModel;
  /** The current defaults from the settings registry. */
  defaults: () => IFormValues;
  /** The values the form starts with (remembered ones, else the defaults). */
  initial: Promise<IFormValues>;
  browseFolder: () => string | null;
  remember: (values: IFormValues) => void;
  open: (job: IJob) => void;
  showOutput: (job: IJob) => void;
  kill: (job: IJob) => Promise<void>;
  /** Launch a new job with an ended one's options, optionally a new memory limit. */
  relaunch: (job: IJob, memoryLimit?: number) => Promise<void>;
  clear: () => Promise<void>;
  waitSettled: (id: string) => Promise<IJob>;
  /** Whether this server runs under JupyterHub, where jobs can be shared. */
  underHub?: boolean;
}

/** The TensorBoard sidebar. Its job list is polled only while it is shown. */
export class TensorBoardSidebar extends ReactWidget {
  constructor(private readonly _options: ISidebarOptions) {
    super();
    this.addClass('jp-ForgatherTB-sidebar');
    this.title.icon = tensorboardIcon;
    this.title.caption = _options.trans.__('TensorBoard');
    // A landmark screen readers can jump to, named like its tab.
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', _options.trans.__('TensorBoard'));
    void _options.initial.then(values => {
      this._initial = values;
      this.update();
    });
  }

  /** Put the cursor in the log directory field. */
  focusForm(): void {
    this._focusLater(() =>
      this.node.querySelector<HTMLInputElement>('input[name="logdir"]')
    );
  }

  /**
   * Bring the job list into view, with the keyboard focus on it: the next Tab reaches
   * its first control.
   */
  scrollToJobs(): void {
    this._focusLater(() => {
      const jobs = this.node.querySelector<HTMLElement>('.jp-ForgatherTB-jobs');
      if (jobs) {
        jobs.tabIndex = -1;
        jobs.scrollIntoView();
      }
      return jobs;
    });
  }

  /**
   * Focus an element two frames from now: after the panel has rendered, and after
   * whatever ran the command has handed the focus back (the command palette activates
   * the main area's widget on the next frame).
   */
  private _focusLater(find: () => HTMLElement | null): void {
    requestAnimationFrame(() => requestAnimationFrame(() => find()?.focus()));
  }

  protected render(): JSX.Element {
    const { model, previews, trans } = this._options;
    return (
      <>
        <div className="jp-ForgatherTB-title">
          <tensorboardIcon.react tag="span" />
          <h2>{trans.__('TensorBoard')}</h2>
        </div>
        {this._initial && (
          <LaunchForm
            api={model.api}
            trans={trans}
            defaults={this._options.defaults()}
            initial={this._initial}
            browseFolder={this._options.browseFolder}
            onSubmit={this._options.remember}
            onJob={job => model.update(job)}
            onOpen={this._options.open}
            waitSettled={this._options.waitSettled}
          />
        )}
        <UseSignal signal={previews.changed}>
          {() => (
            <UseSignal signal={model.changed}>
              {() => (
                <JobList
                  jobs={model.jobs}
                  trans={trans}
                  error={model.error}
                  urlOf={job => model.api.jobUrl(job)}
                  scalarsUrlOf={(job, format) =>
                    model.api.scalarsUrl(job.id, format)
                  }
                  previewOf={job => previews.preview(job.id)}
                  onTag={(job, tag) => void previews.pick(job, tag)}
                  onOpen={this._options.open}
                  onOutput={this._options.showOutput}
                  onKill={job => void this._options.kill(job)}
                  onShare={
                    this._options.underHub
                      ? job => void openShareDialog(model.api, job, trans)
                      : undefined
                  }
                  onRelaunch={this._options.relaunch}
                  onClear={() => void this._options.clear()}
                  onRefresh={() => void model.refresh()}
                />
              )}
            </UseSignal>
          )}
        </UseSignal>
        {this._options.underHub && (
          <SharedWithYou api={model.api} trans={trans} />
        )}
      </>
    );
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._watching ??= this._options.model.watch();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._stopWatching();
  }

  protected onBeforeDetach(msg: Message): void {
    this._stopWatching();
    super.onBeforeDetach(msg);
  }

  private _stopWatching(): void {
    this._watching?.dispose();
    this._watching = null;
  }

  private _initial: IFormValues | null = null;
  private _watching: IDisposable | null = null;
}
