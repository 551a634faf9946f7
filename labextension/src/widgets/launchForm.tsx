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
  isOpenable,
  isS3,
  statusName,
  toggleLogdir,
  toLaunchRequest
} from '../form';
import { IJob, ILaunchResult, ILogdirEntry } from '../tokens';

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
  const [errors, setErrors] = React.useState<
    Partial<Record<FieldName, string>>
  >({});
  const [phase, setPhase] = React.useState<Phase>('idle');
  const [notice, setNotice] = React.useState<INotice | null>(null);
  const [picker, setPicker] = React.useState<ILogdirEntry[] | null>(null);
  const [pickerError, setPickerError] = React.useState<string | null>(null);

  const set = <K extends FieldName>(key: K, value: IFormValues[K]) => {
    setValues(current => ({ ...current, [key]: value }));
    setErrors(current => ({ ...current, [key]: undefined }));
  };
  const field = (name: TextFieldName) => ({
    name,
    value: values[name] ?? '',
    error: errors[name],
    onChange: (value: string) => set(name, value)
  });

  const togglePicker = async () => {
    if (picker) {
      setPicker(null);
      return;
    }
    setPickerError(null);
    try {
      setPicker((await props.api.logdirs()).logdirs);
    } catch (error) {
      setPickerError((error as Error).message);
    }
  };

  /** Use one folder (and stop comparing). */
  const useFolder = (path: string) => {
    set('logdir', path);
    set('logdirs', undefined);
  };

  const browse = () => {
    const folder = props.browseFolder();
    if (folder !== null) {
      useFolder(folder || '.');
    }
  };

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
  const s3 = !compared && isS3(values.logdir);
  return (
    <form className="jp-ForgatherTB-form" onSubmit={submit} noValidate>
      {compared ? (
        <div
          className={`jp-ForgatherTB-field jp-ForgatherTB-compare${errors.logdirs ? ' jp-mod-error' : ''}`}
          data-field="logdirs"
          role="group"
          aria-label={trans.__('Folders to compare')}
        >
          <span className="jp-ForgatherTB-label">
            {trans.__('Folders to compare')}
          </span>
          <ul className="jp-ForgatherTB-compareList">
            {compared.map(path => (
              <li key={path}>
                <span title={path}>{path}</span>
                <Button
                  minimal
                  small
                  type="button"
                  aria-label={trans.__('Stop comparing %1', path)}
                  title={trans.__('Leave this folder out')}
                  onClick={() =>
                    set('logdirs', toggleLogdir(values.logdirs, path))
                  }
                >
                  ×
                </Button>
              </li>
            ))}
          </ul>
          {errors.logdirs && (
            <div className="jp-ForgatherTB-fieldError" role="alert">
              {errors.logdirs}
            </div>
          )}
        </div>
      ) : (
        <TextField
          label={trans.__('Log directory')}
          {...field('logdir')}
          placeholder={trans.__(
            'runs (under the server root) or s3://bucket/prefix'
          )}
        />
      )}
      <div className="jp-ForgatherTB-row jp-ForgatherTB-logdirTools">
        <Button
          minimal
          small
          type="button"
          title={trans.__("Use the file browser's current folder")}
          onClick={browse}
        >
          {trans.__('Browse')}
        </Button>
        <Button
          minimal
          small
          type="button"
          title={trans.__(
            'List folders holding TensorBoard runs, to pick one or compare several'
          )}
          aria-expanded={picker !== null}
          onClick={togglePicker}
        >
          {trans.__('Runs…')}
        </Button>
        {compared && (
          <Button
            minimal
            small
            type="button"
            title={trans.__('Launch on the log directory field instead')}
            onClick={() => set('logdirs', undefined)}
          >
            {trans.__('Stop comparing')}
          </Button>
        )}
      </div>
      {pickerError && (
        <div className="jp-ForgatherTB-fieldError">{pickerError}</div>
      )}
      {picker && picker.length > 0 && (
        <p className="jp-ForgatherTB-dim jp-ForgatherTB-pickerHint">
          {values.logdirs?.length === 1
            ? trans.__('Tick another folder to compare their runs.')
            : trans.__(
                'Click a folder to use it, or tick several to compare their runs in one TensorBoard.'
              )}
        </p>
      )}
      {picker && (
        <ul
          className="jp-ForgatherTB-picker"
          aria-label={trans.__('Folders holding runs')}
        >
          {picker.length === 0 && (
            <li className="jp-ForgatherTB-dim">
              {trans.__('No event files under the server root.')}
            </li>
          )}
          {picker.map(entry => (
            <li key={entry.path}>
              <input
                type="checkbox"
                aria-label={trans.__(
                  'Compare %1',
                  entry.path || trans.__('(server root)')
                )}
                checked={values.logdirs?.includes(entry.path || '.') ?? false}
                onChange={() =>
                  set(
                    'logdirs',
                    toggleLogdir(values.logdirs, entry.path || '.')
                  )
                }
              />
              <button
                type="button"
                onClick={event => {
                  useFolder(entry.path || '.');
                  setPicker(null);
                  // The list goes away: the keyboard focus goes back to the field.
                  event.currentTarget.form
                    ?.querySelector<HTMLInputElement>('input[name="logdir"]')
                    ?.focus();
                }}
              >
                <span>{entry.path || trans.__('(server root)')}</span>
                <span className="jp-ForgatherTB-dim">
                  {trans._n('%1 run', '%1 runs', entry.runs)}
                </span>
              </button>
            </li>
          ))}
        </ul>
      )}

      <TextField
        label={trans.__('Window title')}
        {...field('window_title')}
        placeholder={
          compared ? compareTitle(compared) : defaultTitle(values.logdir)
        }
      />

      <div className="jp-ForgatherTB-row">
        <TextField
          label={trans.__('Port')}
          {...field('port')}
          inputMode="numeric"
          placeholder={trans.__('none')}
          title={trans.__(
            'Blank: no TCP port (a private socket, reached through Jupyter)'
          )}
        />
        <TextField
          label={trans.__('Priority')}
          {...field('priority')}
          inputMode="numeric"
          title={trans.__('Higher starts first when jobs wait in the queue')}
        />
      </div>

      <label className="jp-ForgatherTB-check">
        <input
          type="checkbox"
          name="bind_all"
          checked={values.bind_all}
          onChange={event => set('bind_all', event.target.checked)}
        />
        {trans.__('Bind to all network interfaces')}
      </label>
      {errors.bind_all && (
        <div className="jp-ForgatherTB-fieldError">{errors.bind_all}</div>
      )}
      {values.bind_all && (
        <div className="jp-ForgatherTB-warning" role="alert">
          {trans.__(
            "Anyone who can reach this machine's network will see these metrics directly, without Jupyter's login. Leave this off to reach TensorBoard only through Jupyter."
          )}
        </div>
      )}

      <details className="jp-ForgatherTB-advanced">
        <summary>{trans.__('Advanced')}</summary>
        <TextField
          label={trans.__('Reload interval (seconds)')}
          {...field('reload_interval')}
          inputMode="decimal"
          placeholder={trans.__("TensorBoard's default (5)")}
        />
        <Field
          label={trans.__('Reload multifile')}
          name="reload_multifile"
          error={errors.reload_multifile}
        >
          <select
            className="jp-mod-styled"
            name="reload_multifile"
            value={values.reload_multifile}
            onChange={event =>
              set(
                'reload_multifile',
                event.target.value as IFormValues['reload_multifile']
              )
            }
          >
            <option value="default">{trans.__("TensorBoard's default")}</option>
            <option value="on">
              {trans.__('On: read every file of a run')}
            </option>
            <option value="off">
              {trans.__('Off: read the newest file only')}
            </option>
          </select>
        </Field>
        <TextField
          label={trans.__('Samples per plugin')}
          {...field('samples_per_plugin')}
          placeholder="scalars=1000,images=10"
        />
        <Field
          label={trans.__('Loader')}
          name="load_fast"
          error={errors.load_fast}
        >
          {/* Automatic: Rust in the job's private network where the machine allows
              one, else Python (see docs/performance.md, "Which loader"). */}
          <select
            className="jp-mod-styled"
            name="load_fast"
            value={values.load_fast}
            onChange={event =>
              set('load_fast', event.target.value as IFormValues['load_fast'])
            }
          >
            <option value="auto">{trans.__('Automatic')}</option>
            <option value="false">
              {trans.__('Python: the job keeps network access')}
            </option>
            <option value="true">{trans.__('Rust data server')}</option>
          </select>
        </Field>
        <TextField
          label={trans.__('S3 sync interval (seconds)')}
          {...field('sync_interval')}
          value={s3 ? values.sync_interval : ''}
          inputMode="decimal"
          placeholder={
            s3
              ? trans.__('default (5)')
              : trans.__('s3:// log directories only')
          }
          disabled={!s3}
        />
        <TextField
          label={trans.__('Memory limit')}
          {...field('memory_limit')}
          placeholder={trans.__('server default')}
          title={trans.__(
            'Bytes, or with a K, M, G or T suffix (binary: 2G is 2 GiB)'
          )}
        />
        <TextField
          label={trans.__('Host')}
          {...field('host')}
          value={values.bind_all ? '' : values.host}
          placeholder={
            values.bind_all ? trans.__('all interfaces') : '127.0.0.1'
          }
          title={trans.__('The loopback address a port listens on')}
          disabled={values.bind_all}
        />
      </details>

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

/** A labelled form field with its error beneath. */
function Field(props: {
  label: string;
  name: FieldName;
  error?: string;
  children: React.ReactNode;
}): JSX.Element {
  return (
    <div
      className={`jp-ForgatherTB-field${props.error ? ' jp-mod-error' : ''}`}
      data-field={props.name}
    >
      <label>
        <span className="jp-ForgatherTB-label">{props.label}</span>
        {props.children}
      </label>
      {props.error && (
        <div className="jp-ForgatherTB-fieldError" role="alert">
          {props.error}
        </div>
      )}
    </div>
  );
}

/** The fields typed as text (the others are a checkbox and selects). */
type TextFieldName = Exclude<
  FieldName,
  'bind_all' | 'reload_multifile' | 'load_fast' | 'logdirs'
>;

/** A labelled text input for one field, with its error beneath. */
function TextField(props: {
  label: string;
  name: TextFieldName;
  value: string;
  error?: string;
  onChange: (value: string) => void;
  inputMode?: 'numeric' | 'decimal';
  placeholder?: string;
  title?: string;
  disabled?: boolean;
}): JSX.Element {
  return (
    <Field label={props.label} name={props.name} error={props.error}>
      <input
        className="jp-mod-styled"
        name={props.name}
        value={props.value}
        onChange={event => props.onChange(event.target.value)}
        inputMode={props.inputMode}
        placeholder={props.placeholder}
        title={props.title}
        disabled={props.disabled}
        autoComplete="off"
        spellCheck={false}
      />
    </Field>
  );
}
