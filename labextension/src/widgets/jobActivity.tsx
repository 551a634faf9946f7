/**
 * A job's activity line: waiting for event files, live with its last write, or idle.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { activityText, isStalled } from '../activity';
import { ENDED_STATUSES, IJob } from '../tokens';

/** The activity line of a job's card; nothing before the first scan or once ended. */
export function JobActivity(props: {
  job: IJob;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { job, trans } = props;
  const { activity } = job;
  if (!activity || ENDED_STATUSES.has(job.status)) {
    return null;
  }
  const stalled = isStalled(job);
  const files = trans._n(
    '%1 event file',
    '%1 event files',
    activity.event_files
  );
  return (
    <div
      className={`jp-ForgatherTB-activity${stalled ? ' jp-mod-warn' : ''}`}
      data-state={activity.state}
      title={
        activity.last_write
          ? trans.__('%1, last written %2', files, activity.last_write)
          : files
      }
    >
      {activityText(activity, trans)}
    </div>
  );
}
