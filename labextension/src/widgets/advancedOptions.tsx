/**
 * The launch form's Advanced section: reloading, samples, loader, mirror sync, memory
 * limit and host.
 */
import * as React from 'react';

import { comparedLogdirs, IFormValues, isRemote } from '../form';
import { Field, IFormSectionProps, TextField, textField } from './formFields';

/** The Advanced section, folded by default. */
export function AdvancedOptions(props: IFormSectionProps): JSX.Element {
  const { trans, values, errors, set } = props;
  const remote = !comparedLogdirs(values) && isRemote(values.logdir);
  return (
    <details className="jp-ForgatherTB-advanced">
      <summary>{trans.__('Advanced')}</summary>
      <TextField
        label={trans.__('Reload interval (seconds)')}
        {...textField(props, 'reload_interval')}
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
          <option value="on">{trans.__('On: read every file of a run')}</option>
          <option value="off">
            {trans.__('Off: read the newest file only')}
          </option>
        </select>
      </Field>
      <TextField
        label={trans.__('Samples per plugin')}
        {...textField(props, 'samples_per_plugin')}
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
        label={trans.__('Sync interval (seconds)')}
        {...textField(props, 'sync_interval')}
        value={remote ? values.sync_interval : ''}
        inputMode="decimal"
        placeholder={
          remote
            ? trans.__('default (5)')
            : trans.__('remote log directories only')
        }
        disabled={!remote}
      />
      <TextField
        label={trans.__('Memory limit')}
        {...textField(props, 'memory_limit')}
        placeholder={trans.__('server default')}
        title={trans.__(
          'Bytes, or with a K, M, G or T suffix (binary: 2G is 2 GiB)'
        )}
      />
      <TextField
        label={trans.__('Host')}
        {...textField(props, 'host')}
        value={values.bind_all ? '' : values.host}
        placeholder={values.bind_all ? trans.__('all interfaces') : '127.0.0.1'}
        title={trans.__('The loopback address a port listens on')}
        disabled={values.bind_all}
      />
    </details>
  );
}
