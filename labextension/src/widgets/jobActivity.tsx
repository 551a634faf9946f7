/**
 * A job's activity line: waiting for event files, live with its last write, or idle.
 */
import * as React from 'react';

import { activityText, isStalled } from '../activity';
import { ENDED_STATUSES, IJob } from '../tokens';

/** The activity line of a job's card; nothing before the first scan or once ended. */
export function JobActivity(props: { job: IJob }): JSX.Element | null {
  const { job } = props;
  const { activity } = job;
  if (!activity || ENDED_STATUSES.has(job.status)) {
    return null;
  }
  const stalled = isStalled(job);
  const files = `${activity.event_files} event ${activity.event_files === 1 ? 'file' : 'files'}`;
  return (
    <div
      className={`jp-ForgatherTB-activity${stalled ? ' jp-mod-warn' : ''}`}
      data-state={activity.state}
      title={
        activity.last_write
          ? `${files}, last written ${activity.last_write}`
          : files
      }
    >
      {activityText(activity)}
    </div>
  );
}
