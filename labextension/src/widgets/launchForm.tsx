/**
 * The launch form: every option of `POST jobs`, field errors beside their fields,
 * and progress until the job runs.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { Button } from '@jupyterlab/ui-components';
import * as React from 'react';

import { ApiError, TensorBoardAPI } from '../api';
import {
  comparedLogdirs,
  compareTitle,
  defaultTitle,
  fieldOf,
  FieldName,
  IFormValues,
  toLaunchRequest
} from '../form';
import { isOpenable, statusName } from '../jobText';
import { IJob, ILaunchResult } from '../tokens';
import { AdvancedOptions } from './advancedOptions';
import {
  FieldErrors,
  IFormSectionProps,
  TextField,
  textField
} from './formFields';
import { LogdirPicker } from './logdirPicker';
import { PortOptions } from './portOptions';

/** What the form needs from its surroundings. */
export interface ILaunchFormProps {
  api: TensorBoardAPI;
  trans: TranslationBundle;
  /** The settings registry's defaults: what "Reset to defaults" restores. */
  defaults: IFormValues;
  /** The values to start with: the last submitted ones, else the defaults. */
  initial: IFormValues;
  /** The file browser's current folder, relative to the server root, if any. */
  browseFolder: () => string | null;
  /** Called with the values of each submission, to remember them. */
  onSubmit: (values: IFormValues) => void;
  /** Called when the server has answered a launch, and when its job settles. */
  onJob: (job: IJob) => void;
  /** Open a job in a main-area tab. */
  onOpen: (job: IJob) => void;
  /** Wait until a job has left `starting` (or is queued); resolves with its state. */
  waitSettled: (id: string) => Promise<IJob>;
}

type Phase = 'idle' | 'sending' | 'starting';

interface INotice {
  kind: 'info' | 'error';
  text: string;
  job?: IJob;
}

const ERROR_PREFIX = /^[a-z_]+: /;

/** The server's message without its leading "field: ", for display beside the field. */
function fieldMessage(message: string): string {
  return message.replace(ERROR_PREFIX, '');
}

/** The launch form. */
export function LaunchForm(props: ILaunchFormProps): JSX.Element {
  const { trans } = props;
  const [values, setValues] = React.useState<IFormValues>(props.initial);
  const [errors, setErrors] = React.useState<FieldErrors>({});
  const [phase, setPhase] = React.useState<Phase>('idle');
  const [notice, setNotice] = React.useState<INotice | null>(null);

  const set = <K extends FieldName>(key: K, value: IFormValues[K]) => {
    setValues(current => ({ ...current, [key]: value }));
    setErrors(current => ({ ...current, [key]: undefined }));
  };
  const section: IFormSectionProps = { trans, values, errors, set };

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    if (busy) {
      return;
    }
    setErrors({});
    setNotice(null);
    setPhase('sending');
    props.onSubmit(values);
    let job: ILaunchResult;
    try {
      job = await props.api.launch(toLaunchRequest(values));
    } catch (error) {
      setPhase('idle');
      const field = error instanceof ApiError ? fieldOf(error.field) : null;
      if (field) {
        setErrors({ [field]: fieldMessage((error as ApiError).message) });
      } else {
        setNotice({ kind: 'error', text: (error as Error).message });
      }
      return;
    }
    props.onJob(job);
    if (job.reused) {
      setPhase('idle');
      setNotice({
        kind: 'info',
        text: trans.__(
          'Reused the %1 job “%2”: it already serves these options.',
          statusName(job.status, trans),
          job.label
        ),
        job
      });
      return;
    }
    setPhase('starting');
    let settled: IJob;
    try {
      settled = await props.waitSettled(job.id);
    } catch (error) {
      setPhase('idle');
      setNotice({ kind: 'error', text: (error as Error).message });
      return;
    }
    props.onJob(settled);
    setPhase('idle');
    setNotice(settledNotice(settled, trans));
  };

  const reset = () => {
    setValues(props.defaults);
    setErrors({});
    setNotice(null);
  };

  const busy = phase !== 'idle';
  const compared = comparedLogdirs(values);
  return (
    <form className="jp-ForgatherTB-form" onSubmit={submit} noValidate>
      <LogdirPicker
        {...section}
        api={props.api}
        browseFolder={props.browseFolder}
      />

      <TextField
        label={trans.__('Window title')}
        {...textField(section, 'window_title')}
        placeholder={
          compared ? compareTitle(compared) : defaultTitle(values.logdir)
        }
      />

      <PortOptions {...section} />

      <AdvancedOptions {...section} />

      <div className="jp-ForgatherTB-row jp-ForgatherTB-actions">
        {/* Busy, the buttons keep the keyboard focus: aria-disabled, not disabled. */}
        <Button
          type="submit"
          aria-disabled={busy}
          className="jp-ForgatherTB-submit"
        >
          {busy && (
            <span className="jp-ForgatherTB-spinner" aria-hidden="true" />
          )}
          {phase === 'sending'
            ? trans.__('Launching…')
            : phase === 'starting'
              ? trans.__('Starting…')
              : trans.__('Launch')}
        </Button>
        <Button
          minimal
          type="button"
          onClick={busy ? undefined : reset}
          aria-disabled={busy}
        >
          {trans.__('Reset to defaults')}
        </Button>
      </div>
      {notice && (
        <div
          className={`jp-ForgatherTB-notice jp-ForgatherTB-notice-${notice.kind}`}
          role="status"
        >
          <span>{notice.text}</span>
          {notice.job && isOpenable(notice.job) && (
            <Button
              small
              minimal
              type="button"
              onClick={() => props.onOpen(notice.job!)}
            >
              {trans.__('Open')}
            </Button>
          )}
        </div>
      )}
    </form>
  );
}

/** What the form says once a new job has settled. */
function settledNotice(job: IJob, trans: TranslationBundle): INotice {
  switch (job.status) {
    case 'running':
      return {
        kind: 'info',
        text: trans.__('“%1” is running.', job.label),
        job
      };
    case 'queued':
      return {
        kind: 'info',
        text: trans.__(
          '“%1” is queued (#%2): it starts when a running job ends.',
          job.label,
          job.queue_position
        ),
        job
      };
    default:
      return {
        kind: 'error',
        text: job.error
          ? trans.__(
              '“%1” %2: %3',
              job.label,
              statusName(job.status, trans),
              job.error
            )
          : trans.__('“%1” %2', job.label, statusName(job.status, trans)),
        job
      };
  }
}
