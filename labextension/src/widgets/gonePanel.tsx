/**
 * What a TensorBoard tab shows in place of TensorBoard when there is none to show:
 * its job waits to run, has ended, or is not on this server.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { Button } from '@jupyterlab/ui-components';
import * as React from 'react';

import { age, statusText } from '../jobText';
import { tensorboardIcon } from '../icons';
import { endedReason, TabState, waitingText } from '../tabState';
import { IJob } from '../tokens';

/** What the panel shows and what its buttons do. */
export interface IGonePanelProps {
  /** Any state but `live`, in which the tab shows TensorBoard itself. */
  state: Exclude<TabState, { kind: 'live' }>;
  trans: TranslationBundle;
  /** The job id the tab was opened for. */
  jobId: string;
  /** The log directory the tab last served, when known. */
  logdir: string | null;
  /** A relaunch or a launch is under way. */
  busy: boolean;
  /** Why the last relaunch or launch failed. */
  error: string | null;
  /** Launch a new job with the ended job's options. */
  onRelaunch: (job: IJob) => void;
  /** Launch a job on the tab's log directory; absent when its options are unknown. */
  onLaunchAgain: (() => void) | null;
  onShowOutput: (job: IJob) => void;
  /** Show the sidebar's launch form. */
  onOpenSidebar: () => void;
  onRetry: () => void;
}

/** The panel in place of TensorBoard. */
export function GonePanel(props: IGonePanelProps): JSX.Element {
  const { state } = props;
  return (
    <div
      className="jp-ForgatherTB-gone"
      data-state={state.kind}
      aria-live="polite"
    >
      <tensorboardIcon.react
        tag="div"
        className="jp-ForgatherTB-goneIcon"
        aria-hidden="true"
      />
      <Body {...props} />
      {props.error && (
        <div
          className="jp-ForgatherTB-notice jp-ForgatherTB-notice-error"
          role="alert"
        >
          {props.error}
        </div>
      )}
    </div>
  );
}

function Body(props: IGonePanelProps): JSX.Element {
  const { state, trans } = props;
  switch (state.kind) {
    case 'checking':
      return <p>{trans.__('Looking up TensorBoard job %1…', props.jobId)}</p>;
    case 'unreachable':
      return (
        <>
          <h2>{trans.__('Cannot reach the Jupyter server')}</h2>
          <p>{state.message}</p>
          <div className="jp-ForgatherTB-row">
            <Action label={trans.__('Try again')} onClick={props.onRetry} />
          </div>
        </>
      );
    case 'waiting':
      return (
        <>
          <h2>{trans.__('TensorBoard is not running yet')}</h2>
          <p>{waitingText(state.job, trans)}</p>
          <LogdirLine logdir={state.job.options.logdir} trans={trans} />
        </>
      );
    case 'ended':
      return <Ended {...props} job={state.job} />;
    case 'unknown':
      return (
        <>
          <h2>{trans.__('This TensorBoard is not on this server')}</h2>
          <p>
            {trans.__(
              'This Jupyter server does not know job %1. It ran on a server that has since restarted, or on another server: JupyterLab reopens your tabs wherever you log in.',
              props.jobId
            )}
          </p>
          <LogdirLine logdir={props.logdir} trans={trans} />
          <div className="jp-ForgatherTB-row jp-ForgatherTB-goneActions">
            {props.onLaunchAgain ? (
              <Action
                label={trans.__('Launch it again')}
                title={trans.__(
                  "Launch TensorBoard here on the same log directory, with the same settings (its port and network options are left to this server's defaults)"
                )}
                primary
                disabled={props.busy}
                onClick={props.onLaunchAgain}
              />
            ) : (
              <Action
                label={trans.__('Open the launch form')}
                title={trans.__('Launch a TensorBoard from the sidebar')}
                onClick={props.onOpenSidebar}
              />
            )}
          </div>
        </>
      );
  }
}

function Ended(props: IGonePanelProps & { job: IJob }): JSX.Element {
  const { job, trans } = props;
  const status = (
    <strong className="jp-ForgatherTB-goneStatus" key="status">
      {statusText(job, trans)}
    </strong>
  );
  const reason = (
    <span className="jp-ForgatherTB-goneReason" key="reason">
      {endedReason(job, trans)}
    </span>
  );
  return (
    <>
      <h2>{trans.__('This TensorBoard has ended')}</h2>
      <p>
        {job.ended
          ? interleave(
              trans.__(
                '“%1” (job %2) is %3, %4 ago: %5.',
                job.label,
                job.id,
                SLOT,
                age(job.ended, trans),
                SLOT
              ),
              [status, reason]
            )
          : interleave(
              trans.__(
                '“%1” (job %2) is %3: %4.',
                job.label,
                job.id,
                SLOT,
                SLOT
              ),
              [status, reason]
            )}
      </p>
      <LogdirLine logdir={job.options.logdir} trans={trans} />
      {job.status === 'failed' && job.output_tail.length > 0 && (
        <pre
          className="jp-ForgatherTB-goneOutput"
          tabIndex={0}
          aria-label={trans.__('Last output')}
        >
          {job.output_tail.join('\n')}
        </pre>
      )}
      <div className="jp-ForgatherTB-row jp-ForgatherTB-goneActions">
        {job.options.logdir && (
          <Action
            label={trans.__('Relaunch')}
            title={trans.__(
              'Launch a new TensorBoard with these options, in this tab'
            )}
            primary
            disabled={props.busy}
            onClick={() => props.onRelaunch(job)}
          />
        )}
        {job.started && (
          <Action
            label={trans.__('Output')}
            title={trans.__("Show TensorBoard's output")}
            onClick={() => props.onShowOutput(job)}
          />
        )}
      </div>
    </>
  );
}

function LogdirLine(props: {
  logdir: string | null;
  trans: TranslationBundle;
}): JSX.Element | null {
  return props.logdir ? (
    <p className="jp-ForgatherTB-dim">
      {interleave(props.trans.__('Log directory: %1', SLOT), [
        <code key="logdir">{props.logdir}</code>
      ])}
    </p>
  ) : null;
}

/** Stands for an element in a translated sentence (see `interleave`). */
const SLOT = '\u0000';

/**
 * A translated sentence with elements in its slots: each `SLOT` the translation kept,
 * in order, takes the next element.
 */
function interleave(text: string, elements: JSX.Element[]): React.ReactNode[] {
  return text
    .split(SLOT)
    .flatMap((part, index) =>
      index === 0 ? [part] : [elements[index - 1], part]
    );
}

function Action(props: {
  label: string;
  title?: string;
  primary?: boolean;
  disabled?: boolean;
  onClick: () => void;
}): JSX.Element {
  return (
    <Button
      className={props.primary ? 'jp-ForgatherTB-primary' : undefined}
      minimal={!props.primary}
      title={props.title}
      aria-disabled={props.disabled}
      onClick={props.disabled ? undefined : props.onClick}
    >
      {props.primary && props.disabled && (
        <span className="jp-ForgatherTB-spinner" aria-hidden="true" />
      )}
      {props.label}
    </Button>
  );
}
