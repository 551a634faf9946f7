/**
 * The Share dialog of a job: who has access (with Revoke), and a form to share it with
 * a JupyterHub user, a group, or a link.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Button, ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import { TensorBoardAPI } from '../api';
import { IJob, IShare, IShareListing, IShareRequest } from '../tokens';

type Kind = 'user' | 'group' | 'link';

/** The absolute address of a Hub-relative path such as a link share's URL. */
export function absolute(path: string): string {
  return new URL(path, window.location.origin).href;
}

/** One share as words: to whom, and until when. */
export function shareText(share: IShare, trans: TranslationBundle): string {
  const whom =
    share.kind === 'link'
      ? trans.__('Anyone with the link')
      : share.kind === 'group'
        ? trans.__('Group %1', share.name ?? '')
        : (share.name ?? '');
  return share.expires_at
    ? trans.__(
        '%1 (until %2)',
        whom,
        new Date(share.expires_at).toLocaleString()
      )
    : whom;
}

/** The dialog's body: live, it reloads after each change. */
export function SharePanel(props: {
  api: TensorBoardAPI;
  job: IJob;
  trans: TranslationBundle;
}): JSX.Element {
  const { api, job, trans } = props;
  const [listing, setListing] = React.useState<IShareListing | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [kind, setKind] = React.useState<Kind>('user');
  const [name, setName] = React.useState('');
  const [hours, setHours] = React.useState('');
  const [busy, setBusy] = React.useState(false);

  const run = async (action: () => Promise<IShareListing | null>) => {
    setBusy(true);
    setError(null);
    try {
      setListing((await action()) ?? (await api.shares(job.id)));
    } catch (reason) {
      setError((reason as Error).message);
    } finally {
      setBusy(false);
    }
  };
  React.useEffect(() => void run(async () => null), [job.id]);

  const ready = !busy && (kind === 'link' || name.trim() !== '');
  const share = () => {
    const request: IShareRequest =
      kind === 'link' ? { link: true } : { [kind]: name.trim() };
    const expires = Math.round(parseFloat(hours) * 3600);
    if (expires > 0) {
      request.expires_in = expires;
    }
    void run(async () => {
      await api.share(job.id, request);
      setName('');
      return null;
    });
  };

  /** Enter in a field shares, as the Share button does. */
  const onEnter = (event: React.KeyboardEvent) => {
    if (event.key === 'Enter' && ready) {
      event.preventDefault();
      share();
    }
  };

  if (listing && !listing.enabled) {
    return <p className="jp-ForgatherTB-shareReason">{listing.reason}</p>;
  }
  return (
    <div className="jp-ForgatherTB-share">
      <p>
        {trans.__(
          'Whoever you share it with can read this TensorBoard only: not your files, notebooks or other jobs.'
        )}
      </p>
      <ul
        className="jp-ForgatherTB-shareList"
        aria-label={trans.__('Who has access')}
      >
        {listing?.shares.length === 0 && <li>{trans.__('Not shared yet.')}</li>}
        {listing?.shares.map(item => (
          <li key={item.id}>
            <span>{shareText(item, trans)}</span>
            {item.url && (
              <input
                readOnly
                aria-label={trans.__('Link')}
                value={absolute(item.url)}
                onFocus={event => event.currentTarget.select()}
              />
            )}
            <Button
              small
              minimal
              disabled={busy}
              onClick={() => void run(() => api.unshare(job.id, item.id))}
            >
              {trans.__('Revoke')}
            </Button>
          </li>
        ))}
      </ul>
      <div className="jp-ForgatherTB-shareForm">
        <select
          aria-label={trans.__('Share with')}
          value={kind}
          onChange={event => setKind(event.currentTarget.value as Kind)}
        >
          <option value="user">{trans.__('User')}</option>
          <option value="group">{trans.__('Group')}</option>
          <option value="link">{trans.__('Link')}</option>
        </select>
        {kind !== 'link' && (
          <input
            className="jp-ForgatherTB-shareName"
            aria-label={
              kind === 'user' ? trans.__('User name') : trans.__('Group name')
            }
            value={name}
            onChange={event => setName(event.currentTarget.value)}
            onKeyDown={onEnter}
          />
        )}
        <input
          aria-label={trans.__('Hours until it ends (optional)')}
          placeholder={trans.__('hours (optional)')}
          inputMode="decimal"
          value={hours}
          onChange={event => setHours(event.currentTarget.value)}
          onKeyDown={onEnter}
        />
        <Button disabled={!ready} onClick={share}>
          {trans.__('Share')}
        </Button>
      </div>
      {error && (
        <p role="alert" className="jp-ForgatherTB-error">
          {error}
        </p>
      )}
    </div>
  );
}

/**
 * Show a job's Share dialog, its cursor in the name field.
 *
 * No default button: the dialog would take Enter in a field for Close, losing the name.
 */
export async function openShareDialog(
  api: TensorBoardAPI,
  job: IJob,
  trans: TranslationBundle
): Promise<void> {
  await showDialog({
    title: trans.__('Share TensorBoard %1', job.label),
    body: ReactWidget.create(<SharePanel api={api} job={job} trans={trans} />),
    buttons: [Dialog.okButton({ label: trans.__('Close') })],
    defaultButton: -1,
    focusNodeSelector: '.jp-ForgatherTB-shareName'
  });
}
