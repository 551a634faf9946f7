/**
 * The typed client of the server's REST API: the only module that knows its URLs.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  IConnection,
  IJob,
  ILaunchRequest,
  ILaunchResult,
  ILogdirList,
  IOutputChunk,
  IPreview,
  IRelaunchRequest,
  ISharedServer,
  IShare,
  IShareListing,
  IShareRequest,
  JobStatus
} from './tokens';

/** The API's path under the server's base URL. */
export const API_PATH = 'forgather-tb/api';

/**
 * An error answer of the API: its `message`, and the request `field` at fault when
 * the server named one (so a form can show it next to that field).
 */
export class ApiError extends ServerConnection.ResponseError {
  constructor(
    response: Response,
    message: string,
    readonly field: string | null
  ) {
    super(response, message);
  }

  /** Read the server's `{"message", "field"}` body; fall back to the HTTP status. */
  static async fromResponse(response: Response): Promise<ApiError> {
    let message = `${response.status} ${response.statusText}`.trim();
    let field: string | null = null;
    try {
      const body = await response.json();
      if (body && typeof body.message === 'string' && body.message) {
        message = body.message;
      }
      if (body && typeof body.field === 'string') {
        field = body.field;
      }
    } catch {
      // Not JSON (a proxy's error page, say): the status line is all we have.
    }
    return new ApiError(response, message, field);
  }
}

/** Split a buffer of server-sent events into complete events and the rest. */
export function parseEvents(buffer: string): {
  events: { event: string; data: string }[];
  rest: string;
} {
  const events: { event: string; data: string }[] = [];
  const blocks = buffer.replace(/\r\n/g, '\n').split('\n\n');
  const rest = blocks.pop() ?? '';
  for (const block of blocks) {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        continue; // a comment: the server's keepalive
      }
      const colon = line.indexOf(':');
      const name = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (name === 'event') {
        event = value;
      } else if (name === 'data') {
        data.push(value);
      }
    }
    if (data.length) {
      events.push({ event, data: data.join('\n') });
    }
  }
  return { events, rest };
}

/** The REST API of one Jupyter server. */
export class TensorBoardAPI {
  constructor(
    readonly serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  /** Every job, oldest first. */
  listJobs(): Promise<IJob[]> {
    return this._json('jobs');
  }

  /** One job. */
  getJob(id: string): Promise<IJob> {
    return this._json(`jobs/${encodeURIComponent(id)}`);
  }

  /** Launch a job, or get the live one that already serves these options. */
  launch(request: ILaunchRequest): Promise<ILaunchResult> {
    return this._json('jobs', {
      method: 'POST',
      body: JSON.stringify(request)
    });
  }

  /** Stop a job (or cancel it while queued); resolves with its final state. */
  kill(id: string): Promise<IJob> {
    return this._json(`jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  /**
   * Launch a new job with an ended job's options, changed by `request`; resolves
   * with the new job. A live job is refused (409): kill it first.
   */
  relaunch(id: string, request: IRelaunchRequest = {}): Promise<IJob> {
    return this._json(`jobs/${encodeURIComponent(id)}/relaunch`, {
      method: 'POST',
      body: JSON.stringify(request)
    });
  }

  /** Remove every ended job from the list; resolves with the ids removed. */
  async clearEnded(): Promise<string[]> {
    const answer = await this._json<{ removed: string[] }>('jobs', {
      method: 'DELETE'
    });
    return answer.removed;
  }

  /**
   * Directories under `path` (default: the server's root) that hold runs; `path`
   * may be a remote source's URL, opened with the named `connection` if given.
   */
  logdirs(path?: string, connection?: string): Promise<ILogdirList> {
    const params: Record<string, string> = {};
    if (path) {
      params.path = path;
    }
    if (connection) {
      params.connection = connection;
    }
    const query = path ? URLExt.objectToQueryString(params) : '';
    return this._json('logdirs', {}, query);
  }

  /** The server's named connections for remote log directories, without secrets. */
  async connections(): Promise<IConnection[]> {
    const answer = await this._json<{ connections: IConnection[] }>(
      'connections'
    );
    return answer.connections;
  }

  /**
   * One scalar tag's recent points for a running job's runs; without `tag`, the
   * server picks one (the first with "loss" in its name, else the first). Refused
   * with 409 while the job is not running, 400 for a tag it does not have.
   */
  preview(id: string, tag?: string): Promise<IPreview> {
    const query = tag ? URLExt.objectToQueryString({ tag }) : '';
    return this._json(`jobs/${encodeURIComponent(id)}/preview`, {}, query);
  }

  /** Who a job is shared with (under JupyterHub), and whether sharing works here. */
  shares(id: string): Promise<IShareListing> {
    return this._json(`jobs/${encodeURIComponent(id)}/shares`);
  }

  /** Share a job with a Hub user, a Hub group, or a link; resolves with the share. */
  share(id: string, request: IShareRequest): Promise<IShare> {
    return this._json(`jobs/${encodeURIComponent(id)}/shares`, {
      method: 'POST',
      body: JSON.stringify(request)
    });
  }

  /** Revoke one share of a job; resolves with the shares that remain. */
  unshare(id: string, shareId: string): Promise<IShareListing> {
    const query = URLExt.objectToQueryString({ share: shareId });
    return this._json(
      `jobs/${encodeURIComponent(id)}/shares`,
      { method: 'DELETE' },
      query
    );
  }

  /** The servers others share with this server's owner (JupyterHub's list). */
  sharedWithMe(): Promise<ISharedServer[]> {
    return this._json('shared');
  }

  /** A job's output from byte `offset`. */
  output(id: string, offset = 0): Promise<IOutputChunk> {
    const query = URLExt.objectToQueryString({ offset: String(offset) });
    return this._json(`jobs/${encodeURIComponent(id)}/output`, {}, query);
  }

  /**
   * Follow a job's output live from `offset`, calling `onChunk` for each piece,
   * until the process has ended (resolves with its final status) or `signal` aborts
   * (resolves with null).
   */
  async followOutput(
    id: string,
    offset: number,
    onChunk: (chunk: IOutputChunk) => void,
    signal: AbortSignal
  ): Promise<JobStatus | null> {
    const query = URLExt.objectToQueryString({ offset: String(offset) });
    const url = this._url(
      `jobs/${encodeURIComponent(id)}/output/stream`,
      query
    );
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(
        url,
        { signal },
        this.serverSettings
      );
    } catch (error) {
      if (signal.aborted) {
        return null;
      }
      throw error;
    }
    if (!response.ok) {
      throw await ApiError.fromResponse(response);
    }
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          return null; // closed without an end event: the server went away
        }
        buffer += decoder.decode(value, { stream: true });
        const parsed = parseEvents(buffer);
        buffer = parsed.rest;
        for (const { event, data } of parsed.events) {
          if (event === 'output') {
            onChunk(JSON.parse(data) as IOutputChunk);
          } else if (event === 'end') {
            return (JSON.parse(data) as { status: JobStatus }).status;
          }
        }
      }
    } catch (error) {
      if (signal.aborted) {
        return null;
      }
      throw error;
    } finally {
      reader.releaseLock();
    }
  }

  /**
   * Where a running job's scalars download from, as one CSV or Parquet file: a plain
   * link, so the browser streams it to disk under Jupyter's login cookie.
   */
  scalarsUrl(id: string, format: 'csv' | 'parquet'): string {
    const query = URLExt.objectToQueryString({ format });
    return this._url(`jobs/${encodeURIComponent(id)}/scalars`, query);
  }

  /** The absolute URL a job is served at, for a link or an IFrame. */
  jobUrl(job: Pick<IJob, 'url'>): string {
    return new URL(job.url, this.serverSettings.baseUrl).href;
  }

  private _url(path: string, query = ''): string {
    return URLExt.join(this.serverSettings.baseUrl, API_PATH, path) + query;
  }

  private async _json<T>(
    path: string,
    init: RequestInit = {},
    query = ''
  ): Promise<T> {
    const response = await ServerConnection.makeRequest(
      this._url(path, query),
      init,
      this.serverSettings
    );
    if (!response.ok) {
      throw await ApiError.fromResponse(response);
    }
    return (await response.json()) as T;
  }
}
