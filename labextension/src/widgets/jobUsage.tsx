/**
 * A running job's memory against its limit (a meter and its text), its CPU use,
 * and what enforces its limits.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { cpuText, enforcementText, memoryMeter } from '../resources';
import { IJob } from '../tokens';

/** The resources line of a job's card; nothing for a job that is not running. */
export function JobUsage(props: {
  job: IJob;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { job, trans } = props;
  const memory = memoryMeter(job, trans);
  const cpu = cpuText(job);
  if (!memory && !cpu) {
    return null;
  }
  const enforcement = enforcementText(job.limits, trans);
  const title = [memory?.title, enforcement].filter(Boolean).join('; ');
  return (
    <div className="jp-ForgatherTB-usage" title={title}>
      {memory && memory.used !== null && memory.limit !== null && (
        <div
          className={`jp-ForgatherTB-meter${memory.warn ? ' jp-mod-warn' : ''}`}
          role="meter"
          aria-label={trans.__('Memory')}
          aria-valuemin={0}
          aria-valuemax={memory.limit}
          aria-valuenow={Math.min(memory.used, memory.limit)}
          aria-valuetext={memory.text}
        >
          <div
            className="jp-ForgatherTB-meterFill"
            style={{
              width: `${Math.min(100, (100 * memory.used) / memory.limit)}%`
            }}
          />
        </div>
      )}
      {memory && (
        <span
          className={`jp-ForgatherTB-memory${memory.warn ? ' jp-mod-warn' : ''}`}
        >
          {memory.text}
        </span>
      )}
      {cpu && (
        <span className="jp-ForgatherTB-cpu">{trans.__('CPU %1', cpu)}</span>
      )}
      {enforcement && (
        <span className="jp-ForgatherTB-dim jp-ForgatherTB-enforcement">
          {enforcement}
        </span>
      )}
    </div>
  );
}
