/**
 * The launch form's building blocks: a labelled field with its error beneath, a text
 * input for one field, and what each section of the form gets from the form.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { FieldName, IFormValues } from '../form';

/** The server's message for each field it refused, shown beside the field. */
export type FieldErrors = Partial<Record<FieldName, string>>;

/** What a section of the launch form gets: the values, their errors, and a setter. */
export interface IFormSectionProps {
  trans: TranslationBundle;
  values: IFormValues;
  errors: FieldErrors;
  /** Change one value, clearing its error. */
  set<K extends FieldName>(key: K, value: IFormValues[K]): void;
}

/** The fields typed as text (the others are a checkbox and selects). */
export type TextFieldName = Exclude<
  FieldName,
  'bind_all' | 'reload_multifile' | 'load_fast' | 'logdirs'
>;

/** The props a `TextField` takes from the form for the field `name`. */
export function textField(
  section: IFormSectionProps,
  name: TextFieldName
): Pick<ITextFieldProps, 'name' | 'value' | 'error' | 'onChange'> {
  return {
    name,
    value: section.values[name] ?? '',
    error: section.errors[name],
    onChange: (value: string) => section.set(name, value)
  };
}

/** A labelled form field with its error beneath. */
export function Field(props: {
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

/** What a `TextField` shows. */
export interface ITextFieldProps {
  label: string;
  name: TextFieldName;
  value: string;
  error?: string;
  onChange: (value: string) => void;
  inputMode?: 'numeric' | 'decimal';
  placeholder?: string;
  title?: string;
  disabled?: boolean;
}

/** A labelled text input for one field, with its error beneath. */
export function TextField(props: ITextFieldProps): JSX.Element {
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
