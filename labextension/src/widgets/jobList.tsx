/**
 * The job list: each job's state and the actions that fit it.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import {
  Button,
  closeIcon,
  downloadIcon,
  launchIcon,
  shareIcon,
  refreshIcon,
  stopIcon,
  tabIcon,
  LabIcon,
  listIcon,
  ToolbarButtonComponent
} from '@jupyterlab/ui-components';
import * as React from 'react';

import {
  age,
  exposureWarning,
  firstCopyFraction,
  firstCopyText,
  isOpenable,
  loaderText,
  mirrorText,
  skippedText,
  statusName,
  storeName,
  statusText
} from '../jobText';
import { doubledMemoryLimit } from '../resources';
import { formatBytes } from '../sizes';
import { ENDED_STATUSES, IJob, IPreview } from '../tokens';
import { JobActivity } from './jobActivity';
import { JobPreview } from './preview';
import { JobUsage } from './jobUsage';

/** What the list needs from its surroundings. */
export interface IJobListProps {
  jobs: readonly IJob[];
  trans: TranslationBundle;
  /** Why the list could not be fetched, if it could not. */
  error: string | null;
  /** The absolute URL a job is served at. */
  urlOf: (job: IJob) => string;
  /** Where a running job's scalars download from, as CSV or Parquet. */
  scalarsUrlOf?: (job: IJob, format: 'csv' | 'parquet') => string;
  /** A job's last scalar preview, if any. */
  previewOf: (job: IJob) => IPreview | null;
  /** Show another scalar tag in a job's preview. */
  onTag: (job: IJob, tag: string) => void;
  onOpen: (job: IJob) => void;
  onOutput: (job: IJob) => void;
  onKill: (job: IJob) => void;
  /** Open a live job's Share dialog (only under JupyterHub). */
  onShare?: (job: IJob) => void;
  /** Launch a new job with an ended job's options, optionally a new memory limit. */
  onRelaunch: (job: IJob, memoryLimit?: number) => Promise<void>;
  onClear: () => void;
  onRefresh: () => void;
}

/** The live job list, newest first. */
export function JobList(props: IJobListProps): JSX.Element {
  const { trans } = props;
  const jobs = [...props.jobs].reverse();
  const anyEnded = jobs.some(job => ENDED_STATUSES.has(job.status));
  return (
    <section
      className="jp-ForgatherTB-jobs"
      aria-label={trans.__('TensorBoard jobs')}
    >
      <header className="jp-ForgatherTB-jobsHeader">
        <h3>{trans.__('Jobs')}</h3>
        <ToolbarButtonComponent
          icon={refreshIcon}
          tooltip={trans.__('Refresh the list')}
          onClick={props.onRefresh}
        />
        <ToolbarButtonComponent
          icon={closeIcon}
          label={trans.__('Clear finished')}
          tooltip={trans.__('Remove ended jobs from the list')}
          enabled={anyEnded}
          onClick={props.onClear}
        />
      </header>
      {props.error && (
        <div
          className="jp-ForgatherTB-notice jp-ForgatherTB-notice-error"
          role="alert"
        >
          {trans.__('Cannot list jobs: %1', props.error)}
        </div>
      )}
      {jobs.length === 0 && !props.error && (
        <p className="jp-ForgatherTB-dim">
          {trans.__('No TensorBoard yet: launch one above.')}
        </p>
      )}
      <ul className="jp-ForgatherTB-jobList">
        {jobs.map(job => (
          <JobItem key={job.id} job={job} {...props} />
        ))}
      </ul>
    </section>
  );
}

function JobItem(props: IJobListProps & { job: IJob }): JSX.Element {
  const { job, trans } = props;
  const live = !ENDED_STATUSES.has(job.status);
  const loader = job.loader && loaderText(job.loader, trans);
  const doubled = doubledMemoryLimit(job);
  const [relaunching, setRelaunching] = React.useState(false);
  const relaunch = async (memoryLimit?: number) => {
    setRelaunching(true);
    try {
      await props.onRelaunch(job, memoryLimit);
    } finally {
      setRelaunching(false);
    }
  };
  const exposure = exposureWarning(job, trans);
  const preview = live ? props.previewOf(job) : null;
  return (
    <li
      className="jp-ForgatherTB-job"
      data-job-id={job.id}
      data-status={job.status}
    >
      <div className="jp-ForgatherTB-row">
        <span className="jp-ForgatherTB-jobLabel" title={job.label}>
          {job.label}
        </span>
        <span
          className={`jp-ForgatherTB-badge jp-ForgatherTB-badge-${job.status}`}
          title={job.error ?? statusName(job.status, trans)}
        >
          {job.status === 'starting' && (
            <span className="jp-ForgatherTB-spinner" aria-hidden="true" />
          )}
          {statusText(job, trans)}
        </span>
      </div>
      <div className="jp-ForgatherTB-row jp-ForgatherTB-dim">
        <span className="jp-ForgatherTB-logdir" title={job.options.logdir}>
          {job.options.logdir}
        </span>
        <span title={job.created}>{age(job.created, trans)}</span>
      </div>
      <JobActivity job={job} trans={trans} />
      {preview && (
        <JobPreview
          preview={preview}
          trans={trans}
          onOpen={() => props.onOpen(job)}
          onTag={tag => props.onTag(job, tag)}
        />
      )}
      <JobUsage job={job} trans={trans} />
      {job.status === 'queued' && job.queue_reason && (
        <div className="jp-ForgatherTB-dim jp-ForgatherTB-queueReason">
          {job.queue_reason}
        </div>
      )}
      {loader && (
        <div
          className={
            loader.warn
              ? 'jp-ForgatherTB-warning'
              : 'jp-ForgatherTB-dim jp-ForgatherTB-loader'
          }
        >
          {loader.text}
        </div>
      )}
      {job.mirror?.progress && !job.mirror.progress.done && (
        <div className="jp-ForgatherTB-dim jp-ForgatherTB-firstCopy">
          <span>
            {trans.__(
              'Copying from %1: %2',
              storeName(job.options.logdir),
              firstCopyText(job.mirror.progress, trans)
            )}
          </span>
          <progress
            max={1}
            value={firstCopyFraction(job.mirror.progress)}
            aria-label={trans.__('First copy of %1', job.label)}
          />
        </div>
      )}
      {job.mirror && (
        <div
          className="jp-ForgatherTB-dim jp-ForgatherTB-mirror"
          title={skippedText(job.mirror, trans) || undefined}
        >
          {trans.__(
            '%1 mirror: %2',
            storeName(job.options.logdir),
            mirrorText(job.mirror, trans)
          )}
        </div>
      )}
      {job.mirror?.last_error && (
        <div className="jp-ForgatherTB-warning">
          {trans.__(
            'Last %1 sync failed (retrying, still serving what it has): %2',
            storeName(job.options.logdir),
            job.mirror.last_error
          )}
        </div>
      )}
      {exposure && <div className="jp-ForgatherTB-warning">{exposure}</div>}
      {job.error && job.status !== 'failed' && (
        <div className="jp-ForgatherTB-dim">{job.error}</div>
      )}
      {job.status === 'failed' && (
        <div className="jp-ForgatherTB-failure">
          <div>{job.error ?? trans.__('failed')}</div>
          {job.output_tail.length > 0 && (
            <pre tabIndex={0} aria-label={trans.__('Last output')}>
              {job.output_tail.join('\n')}
            </pre>
          )}
        </div>
      )}
      <div className="jp-ForgatherTB-row jp-ForgatherTB-jobActions">
        {isOpenable(job) && (
          <>
            <Action
              icon={tabIcon}
              label={trans.__('Open')}
              title={trans.__('Open in a Jupyter tab')}
              onClick={() => props.onOpen(job)}
            />
            <a
              className="jp-ForgatherTB-link"
              href={props.urlOf(job)}
              target="_blank"
              rel="noopener noreferrer"
              title={trans.__('Open in a new browser tab')}
            >
              <launchIcon.react
                tag="span"
                className="jp-ForgatherTB-buttonIcon"
              />
              {trans.__('New tab')}
            </a>
          </>
        )}
        {job.status === 'running' &&
          props.scalarsUrlOf &&
          (['csv', 'parquet'] as const).map(format => (
            <a
              key={format}
              className="jp-ForgatherTB-link jp-ForgatherTB-download"
              href={props.scalarsUrlOf!(job, format)}
              download={`${job.id}-scalars.${format}`}
              title={trans.__(
                "Download every scalar of this job's runs (run, tag, step, wall_time, value)"
              )}
            >
              <downloadIcon.react
                tag="span"
                className="jp-ForgatherTB-buttonIcon"
              />
              {format === 'csv'
                ? trans.__('Download CSV')
                : trans.__('Download Parquet')}
            </a>
          ))}
        {job.started && (
          <Action
            icon={listIcon}
            label={trans.__('Output')}
            title={trans.__("Show TensorBoard's output")}
            onClick={() => props.onOutput(job)}
          />
        )}
        {live && (
          <Action
            icon={stopIcon}
            label={
              job.status === 'queued' ? trans.__('Cancel') : trans.__('Kill')
            }
            title={
              job.status === 'queued'
                ? trans.__('Cancel before it starts')
                : trans.__('Stop this TensorBoard')
            }
            onClick={() => props.onKill(job)}
          />
        )}
        {live && props.onShare && (
          <Action
            icon={shareIcon}
            label={trans.__('Share')}
            title={trans.__('Share this TensorBoard with JupyterHub users')}
            onClick={() => props.onShare?.(job)}
          />
        )}
        {!live && (
          <Action
            icon={refreshIcon}
            label={trans.__('Relaunch')}
            title={trans.__('Launch a new TensorBoard with these options')}
            disabled={relaunching}
            onClick={() => void relaunch()}
          />
        )}
        {doubled !== null && (
          <Action
            icon={refreshIcon}
            label={trans.__('Relaunch with 2× memory')}
            title={trans.__(
              'Launch a new TensorBoard with these options and a memory limit of %1',
              formatBytes(doubled)
            )}
            disabled={relaunching}
            onClick={() => void relaunch(doubled)}
          />
        )}
      </div>
    </li>
  );
}

/** A small job action: an icon and a word. */
function Action(props: {
  icon: LabIcon;
  label: string;
  title: string;
  onClick: () => void;
  disabled?: boolean;
}): JSX.Element {
  return (
    <Button
      small
      minimal
      title={props.title}
      onClick={props.disabled ? undefined : props.onClick}
      aria-disabled={props.disabled}
    >
      <props.icon.react tag="span" className="jp-ForgatherTB-buttonIcon" />
      {props.label}
    </Button>
  );
}
