/**
 * The launch form's log directory: the field (or the folders being compared), the
 * Browse and Runs… buttons, and the Runs… list to pick one folder or tick several.
 */
import { Button } from '@jupyterlab/ui-components';
import * as React from 'react';

import { TensorBoardAPI } from '../api';
import { comparedLogdirs, remoteProtocol, toggleLogdir } from '../form';
import { IConnection, ILogdirEntry } from '../tokens';
import { Field, IFormSectionProps, TextField, textField } from './formFields';

/** What the log directory section needs beyond the form's values. */
export interface ILogdirPickerProps extends IFormSectionProps {
  api: TensorBoardAPI;
  /** The file browser's current folder, relative to the server root, if any. */
  browseFolder: () => string | null;
}

/** The log directory section of the launch form. */
export function LogdirPicker(props: ILogdirPickerProps): JSX.Element {
  const { trans, values, errors, set } = props;
  const [picker, setPicker] = React.useState<ILogdirEntry[] | null>(null);
  const [pickerError, setPickerError] = React.useState<string | null>(null);
  const [listing, setListing] = React.useState(false);
  const [connections, setConnections] = React.useState<IConnection[]>([]);

  React.useEffect(() => {
    let live = true;
    // A server without the route (an older one), or with none configured: no select.
    props.api.connections().then(
      found => live && setConnections(found),
      () => undefined
    );
    return () => {
      live = false;
    };
  }, [props.api]);

  const protocol = remoteProtocol(values.logdir);
  const togglePicker = async () => {
    if (picker) {
      setPicker(null);
      return;
    }
    setPickerError(null);
    setListing(true);
    try {
      // A remote log directory in the field: list its run folders instead.
      const answer = protocol
        ? await props.api.logdirs(values.logdir.trim(), values.connection)
        : await props.api.logdirs();
      setPicker(answer.logdirs);
    } catch (error) {
      setPickerError((error as Error).message);
    } finally {
      setListing(false);
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

  const compared = comparedLogdirs(values);
  return (
    <>
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
          {...textField(props, 'logdir')}
          placeholder={trans.__(
            'runs, or s3://, gs://, az:// or ssh://host/path'
          )}
        />
      )}
      {!compared && connections.length > 0 && (
        <Field
          label={trans.__('Connection')}
          name="connection"
          error={errors.connection}
        >
          <select
            className="jp-mod-styled"
            name="connection"
            value={values.connection ?? ''}
            disabled={!protocol}
            title={
              protocol
                ? trans.__("The server's settings to open this source with")
                : trans.__('For remote log directories only')
            }
            onChange={event => set('connection', event.target.value)}
          >
            <option value="">{trans.__('Standard credentials')}</option>
            {connections
              .filter(conn => !protocol || conn.protocol === protocol)
              .map(conn => (
                <option key={conn.name} value={conn.name}>
                  {`${conn.name} (${conn.protocol})`}
                </option>
              ))}
          </select>
        </Field>
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
          aria-busy={listing}
          onClick={listing ? undefined : togglePicker}
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
          {protocol
            ? trans.__('Click a folder to use it.')
            : values.logdirs?.length === 1
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
              {protocol
                ? trans.__('No event files under %1.', values.logdir.trim())
                : trans.__('No event files under the server root.')}
            </li>
          )}
          {picker.map(entry => (
            <li key={entry.path}>
              {!protocol && (
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
              )}
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
    </>
  );
}
