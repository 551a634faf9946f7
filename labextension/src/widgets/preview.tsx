/**
 * A job's scalar preview: a small sparkline of one tag (a line per run) with its latest
 * value, which opens the job's TensorBoard, and a picker of the tag shown.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { formatValue, sparkline } from '../sparkline';
import { IPreview } from '../tokens';

/** The sparkline's box, in CSS pixels. */
const WIDTH = 96;
const HEIGHT = 24;

/** What the preview needs from the card. */
export interface IJobPreviewProps {
  preview: IPreview;
  trans: TranslationBundle;
  /** Open the job's TensorBoard tab. */
  onOpen: () => void;
  /** Show another tag. */
  onTag: (tag: string) => void;
}

/** The preview row of a job's card; nothing while the job has no scalar tag. */
export function JobPreview(props: IJobPreviewProps): JSX.Element | null {
  const { preview, trans } = props;
  if (!preview.tag) {
    return null;
  }
  const { lines, latest } = sparkline(preview.runs, WIDTH, HEIGHT);
  const value = latest ? formatValue(latest.value) : '–';
  const label = latest
    ? trans.__(
        '%1: latest %2 (%3, step %4)',
        preview.tag,
        value,
        latest.run,
        latest.step
      )
    : trans.__('%1: no points yet', preview.tag);
  const perRun = lines.map(line =>
    trans.__(
      '%1: %2 at step %3',
      line.run,
      formatValue(line.last.value),
      line.last.step
    )
  );
  return (
    <div className="jp-ForgatherTB-preview">
      <button
        type="button"
        className="jp-ForgatherTB-previewOpen"
        aria-label={trans.__('%1. Show in TensorBoard', label)}
        title={[...perRun, trans.__('Click to open in TensorBoard')].join('\n')}
        onClick={props.onOpen}
      >
        <svg
          className="jp-ForgatherTB-sparkline"
          role="img"
          aria-label={label}
          width={WIDTH}
          height={HEIGHT}
          viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        >
          {lines.map((line, index) => (
            <polyline
              key={line.run}
              className={`jp-ForgatherTB-sparklineRun jp-ForgatherTB-sparklineRun-${index}`}
              data-run={line.run}
              points={line.points}
            />
          ))}
        </svg>
        <span className="jp-ForgatherTB-latest">{value}</span>
      </button>
      <select
        className="jp-ForgatherTB-previewTag"
        aria-label={trans.__('Scalar tag shown')}
        title={trans.__(
          'The scalar tag shown (remembered for this log directory)'
        )}
        value={preview.tag}
        onChange={event => props.onTag(event.target.value)}
      >
        {(preview.tags.includes(preview.tag)
          ? preview.tags
          : [preview.tag, ...preview.tags]
        ).map(tag => (
          <option key={tag} value={tag}>
            {tag}
          </option>
        ))}
      </select>
    </div>
  );
}
