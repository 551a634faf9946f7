/**
 * A job's process output, followed live while the tab is shown.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { listIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { TensorBoardAPI } from '../api';
import { statusName } from '../jobText';
import { IOutputChunk } from '../tokens';

/**
 * The output of one job. It streams while shown and stops while hidden, then resumes
 * from where it was; it keeps to the end unless the reader scrolled up.
 */
export class OutputView extends Widget {
  constructor(
    private readonly _api: TensorBoardAPI,
    readonly jobId: string,
    private readonly _trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-ForgatherTB-output');
    this._pre = document.createElement('pre');
    this._status = document.createElement('div');
    this._status.className = 'jp-ForgatherTB-outputStatus';
    this.node.append(this._pre, this._status);
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      void this._follow();
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this._follow();
  }

  protected onBeforeHide(msg: Message): void {
    this._stop();
    super.onBeforeHide(msg);
  }

  protected onBeforeDetach(msg: Message): void {
    this._stop();
    super.onBeforeDetach(msg);
  }

  dispose(): void {
    this._stop();
    super.dispose();
  }

  private async _follow(): Promise<void> {
    if (this._abort || this._ended) {
      return;
    }
    const abort = new AbortController();
    this._abort = abort;
    const trans = this._trans;
    this._status.textContent = trans.__('Following the output…');
    try {
      const status = await this._api.followOutput(
        this.jobId,
        this._offset,
        chunk => this._append(chunk),
        abort.signal
      );
      if (status) {
        this._ended = true;
        this._status.textContent = trans.__(
          'TensorBoard ended: %1.',
          statusName(status, trans)
        );
      } else if (!abort.signal.aborted) {
        this._status.textContent = trans.__(
          'The output stream closed; reopen to resume.'
        );
      }
    } catch (error) {
      this._status.textContent = trans.__(
        'Cannot read the output: %1',
        (error as Error).message
      );
    } finally {
      if (this._abort === abort) {
        this._abort = null;
      }
    }
  }

  private _append(chunk: IOutputChunk): void {
    const node = this.node;
    const atEnd = node.scrollHeight - node.scrollTop - node.clientHeight < 8;
    if (chunk.dropped) {
      this._pre.append(this._trans.__('[… earlier output dropped …]') + '\n');
    }
    this._pre.append(chunk.text);
    this._offset = chunk.next_offset;
    if (atEnd) {
      node.scrollTop = node.scrollHeight;
    }
  }

  private _stop(): void {
    this._abort?.abort();
    this._abort = null;
  }

  private _abort: AbortController | null = null;
  private _ended = false;
  private _offset = 0;
  private readonly _pre: HTMLPreElement;
  private readonly _status: HTMLDivElement;
}

/** A main-area tab with a job's live output. */
export function createOutputView(
  api: TensorBoardAPI,
  jobId: string,
  title: string,
  trans: TranslationBundle
): MainAreaWidget<OutputView> {
  const widget = new MainAreaWidget({
    content: new OutputView(api, jobId, trans)
  });
  widget.id = `forgather-tb-output-${jobId}`;
  widget.title.label = trans.__('Output: %1', title);
  widget.title.icon = listIcon;
  widget.title.closable = true;
  return widget;
}
