/**
 * "Shared with you": the TensorBoards other JupyterHub users share with this user,
 * each with an Open link to its owner's page of shared jobs.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { TensorBoardAPI } from '../api';
import { ISharedServer } from '../tokens';

/** The list; nothing at all outside JupyterHub or where sharing is not set up. */
export function SharedWithYou(props: {
  api: TensorBoardAPI;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { api, trans } = props;
  const [servers, setServers] = React.useState<ISharedServer[] | null>(null);
  React.useEffect(() => {
    api.sharedWithMe().then(setServers, () => setServers(null));
  }, [api]);
  if (!servers || servers.length === 0) {
    return null;
  }
  return (
    <section
      className="jp-ForgatherTB-sharedWithYou"
      aria-label={trans.__('Shared with you')}
    >
      <h3>{trans.__('Shared with you')}</h3>
      <ul>
        {servers.map(server => (
          <li key={`${server.owner}/${server.server}`}>
            <span>{server.owner}</span>
            {server.url && (
              <a href={server.url} target="_blank" rel="noopener noreferrer">
                {trans.__('Open')}
              </a>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
