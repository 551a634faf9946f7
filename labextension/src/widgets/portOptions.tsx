/**
 * The launch form's port, priority and bind-all options, with the warning bind-all
 * brings.
 */
import * as React from 'react';

import { IFormSectionProps, TextField, textField } from './formFields';

/** The port and priority row, and the bind-all checkbox with its error and warning. */
export function PortOptions(props: IFormSectionProps): JSX.Element {
  const { trans, values, errors, set } = props;
  return (
    <>
      <div className="jp-ForgatherTB-row">
        <TextField
          label={trans.__('Port')}
          {...textField(props, 'port')}
          inputMode="numeric"
          placeholder={trans.__('none')}
          title={trans.__(
            'Blank: no TCP port (a private socket, reached through Jupyter)'
          )}
        />
        <TextField
          label={trans.__('Priority')}
          {...textField(props, 'priority')}
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
    </>
  );
}
