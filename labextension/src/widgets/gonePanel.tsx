/**
 * What a TensorBoard tab shows in place of TensorBoard when there is none to show:
 * its job waits to run, has ended, or is not on this server.
 */
import { Button } from '@jupyterlab/ui-components';
import * as React from 'react';

import { age, statusText } from '../form';
import { tensorboardIcon } from '../icons';
import { endedReason, TabState, waitingText } from '../tabState';
import { IJob } from '../tokens';

/** What the panel shows and what its buttons do. */
export interface IGonePanelProps {
  /** Any state but `live`, in which the tab shows TensorBoard itself. */
  state: Exclude<TabState, { kind: 'live' }>;
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
  const { state } = props;
  switch (state.kind) {
    case 'checking':
      return <p>Looking up TensorBoard job {props.jobId}…</p>;
    case 'unreachable':
      return (
        <>
          <h2>Cannot reach the Jupyter server</h2>
          <p>{state.message}</p>
          <div className="jp-ForgatherTB-row">
            <Action label="Try again" onClick={props.onRetry} />
          </div>
        </>
      );
    case 'waiting':
      return (
        <>
          <h2>TensorBoard is not running yet</h2>
          <p>{waitingText(state.job)}</p>
          <LogdirLine logdir={state.job.options.logdir} />
        </>
      );
    case 'ended':
      return <Ended {...props} job={state.job} />;
    case 'unknown':
      return (
        <>
          <h2>This TensorBoard is not on this server</h2>
          <p>
            This Jupyter server does not know job {props.jobId}. It ran on a
            server that has since restarted, or on another server: JupyterLab
            reopens your tabs wherever you log in.
          </p>
          <LogdirLine logdir={props.logdir} />
          <div className="jp-ForgatherTB-row jp-ForgatherTB-goneActions">
            {props.onLaunchAgain ? (
              <Action
                label="Launch it again"
                title="Launch TensorBoard here on the same log directory, with the same settings (its port and network options are left to this server's defaults)"
                primary
                disabled={props.busy}
                onClick={props.onLaunchAgain}
              />
            ) : (
              <Action
                label="Open the launch form"
                title="Launch a TensorBoard from the sidebar"
                onClick={props.onOpenSidebar}
              />
            )}
          </div>
        </>
      );
  }
}

function Ended(props: IGonePanelProps & { job: IJob }): JSX.Element {
  const { job } = props;
  const when = job.ended ? `, ${age(job.ended)} ago` : '';
  return (
    <>
      <h2>This TensorBoard has ended</h2>
      <p>
        “{job.label}” (job {job.id}) is{' '}
        <strong className="jp-ForgatherTB-goneStatus">{statusText(job)}</strong>
        {when}:{' '}
        <span className="jp-ForgatherTB-goneReason">{endedReason(job)}</span>.
      </p>
      <LogdirLine logdir={job.options.logdir} />
      {job.status === 'failed' && job.output_tail.length > 0 && (
        <pre
          className="jp-ForgatherTB-goneOutput"
          tabIndex={0}
          aria-label="Last output"
        >
          {job.output_tail.join('\n')}
        </pre>
      )}
      <div className="jp-ForgatherTB-row jp-ForgatherTB-goneActions">
        {job.options.logdir && (
          <Action
            label="Relaunch"
            title="Launch a new TensorBoard with these options, in this tab"
            primary
            disabled={props.busy}
            onClick={() => props.onRelaunch(job)}
          />
        )}
        {job.started && (
          <Action
            label="Output"
            title="Show TensorBoard's output"
            onClick={() => props.onShowOutput(job)}
          />
        )}
      </div>
    </>
  );
}

function LogdirLine(props: { logdir: string | null }): JSX.Element | null {
  return props.logdir ? (
    <p className="jp-ForgatherTB-dim">
      Log directory: <code>{props.logdir}</code>
    </p>
  ) : null;
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
      disabled={props.disabled}
      onClick={props.onClick}
    >
      {props.primary && props.disabled && (
        <span className="jp-ForgatherTB-spinner" aria-hidden="true" />
      )}
      {props.label}
    </Button>
  );
}
