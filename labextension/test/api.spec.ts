import { ServerConnection } from '@jupyterlab/services';
import { describe, expect, it } from 'vitest';

import { ApiError, parseEvents, TensorBoardAPI } from '../src/api';
import { IOutputChunk } from '../src/tokens';

/**
 * A client whose fetch records each request and answers from `reply`. The server side
 * is covered for real by the Python and browser tests; these check the client's own
 * logic: URLs, bodies, error mapping and event-stream parsing.
 */
function client(reply: (url: string, init: RequestInit) => Response) {
  const requests: { url: string; method: string; body: unknown }[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(input, init);
    const body = request.method === 'GET' ? undefined : await request.text();
    // JupyterLab appends a numeric cache buster to every URL: not ours to check.
    const url = request.url.replace(/[?&]\d+$/, '');
    requests.push({ url, method: request.method, body });
    return reply(request.url, init ?? {});
  };
  const settings = ServerConnection.makeSettings({
    baseUrl: 'http://lab.test/user/a%40b/',
    token: 'secret',
    fetch,
    Request,
    Headers
  });
  return { api: new TensorBoardAPI(settings), requests };
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' }
  });

describe('TensorBoardAPI', () => {
  it('posts a launch to the jobs route under the base URL', async () => {
    const { api, requests } = client(() =>
      json({ id: 'j1', reused: false }, 201)
    );
    const job = await api.launch({ logdir: 'runs', port: null });
    expect(job).toEqual({ id: 'j1', reused: false });
    expect(requests).toEqual([
      {
        url: 'http://lab.test/user/a%40b/forgather-tb/api/jobs',
        method: 'POST',
        body: '{"logdir":"runs","port":null}'
      }
    ]);
  });

  it('addresses jobs, output, logdirs and previews with escaped ids and queries', async () => {
    const { api, requests } = client(() => json({}));
    await api.getJob('a/b');
    await api.kill('x');
    await api.output('x', 42);
    await api.logdirs('runs/exp 1');
    await api.preview('x');
    await api.preview('x', 'train/loss & acc');
    await api.clearEnded().catch(() => undefined);
    expect(requests.map(r => `${r.method} ${r.url}`)).toEqual([
      'GET http://lab.test/user/a%40b/forgather-tb/api/jobs/a%2Fb',
      'DELETE http://lab.test/user/a%40b/forgather-tb/api/jobs/x',
      'GET http://lab.test/user/a%40b/forgather-tb/api/jobs/x/output?offset=42',
      'GET http://lab.test/user/a%40b/forgather-tb/api/logdirs?path=runs%2Fexp%201',
      'GET http://lab.test/user/a%40b/forgather-tb/api/jobs/x/preview',
      'GET http://lab.test/user/a%40b/forgather-tb/api/jobs/x/preview?tag=train%2Floss%20%26%20acc',
      'DELETE http://lab.test/user/a%40b/forgather-tb/api/jobs'
    ]);
  });

  it('lists a remote source with its connection, and the connections themselves', async () => {
    const { api, requests } = client(url =>
      json(
        url.includes('/connections')
          ? { connections: [{ name: 'minio', protocol: 's3', settings: {} }] }
          : { path: '', logdirs: [], truncated: false }
      )
    );
    await api.logdirs('s3://bucket/runs', 'minio');
    expect(await api.connections()).toEqual([
      { name: 'minio', protocol: 's3', settings: {} }
    ]);
    expect(requests.map(r => `${r.method} ${r.url}`)).toEqual([
      'GET http://lab.test/user/a%40b/forgather-tb/api/logdirs?path=s3%3A%2F%2Fbucket%2Fruns&connection=minio',
      'GET http://lab.test/user/a%40b/forgather-tb/api/connections'
    ]);
  });

  it('relaunches a job with an optional new memory limit', async () => {
    const { api, requests } = client(() => json({ id: 'j2' }, 201));
    expect(await api.relaunch('a/b')).toEqual({ id: 'j2' });
    await api.relaunch('j1', { memory_limit: '2G' });
    await api.relaunch('j1', { memory_limit: 2 ** 31 });
    expect(requests).toEqual([
      {
        url: 'http://lab.test/user/a%40b/forgather-tb/api/jobs/a%2Fb/relaunch',
        method: 'POST',
        body: '{}'
      },
      {
        url: 'http://lab.test/user/a%40b/forgather-tb/api/jobs/j1/relaunch',
        method: 'POST',
        body: '{"memory_limit":"2G"}'
      },
      {
        url: 'http://lab.test/user/a%40b/forgather-tb/api/jobs/j1/relaunch',
        method: 'POST',
        body: '{"memory_limit":2147483648}'
      }
    ]);
  });

  it('gives the message of a refused relaunch', async () => {
    const { api } = client(() =>
      json({ message: 'job j1 is still running; kill it first' }, 409)
    );
    const error = await api.relaunch('j1').catch(e => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error.message).toBe('job j1 is still running; kill it first');
    expect(error.response.status).toBe(409);
  });

  it('turns an error answer into an ApiError with its field', async () => {
    const { api } = client(() =>
      json({ message: 'port: must be an integer', field: 'port' }, 400)
    );
    const error = await api.launch({ logdir: 'x', port: 'abc' }).catch(e => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toBeInstanceOf(ServerConnection.ResponseError);
    expect(error.message).toBe('port: must be an integer');
    expect(error.field).toBe('port');
    expect(error.response.status).toBe(400);
  });

  it('falls back to the status line when the error is not JSON', async () => {
    const { api } = client(
      () =>
        new Response('<html>bad gateway</html>', {
          status: 502,
          statusText: 'Bad Gateway'
        })
    );
    const error = await api.listJobs().catch(e => e);
    expect(error.message).toBe('502 Bad Gateway');
    expect(error.field).toBeNull();
  });

  it('resolves a job URL against the server', () => {
    const { api } = client(() => json({}));
    expect(api.jobUrl({ url: '/user/a%40b/tb/j1/' })).toBe(
      'http://lab.test/user/a%40b/tb/j1/'
    );
  });

  it('follows the output stream across chunk boundaries until its end event', async () => {
    const first: IOutputChunk = {
      offset: 0,
      next_offset: 6,
      text: 'hello\n',
      dropped: false,
      complete: false,
      status: 'running'
    };
    const second = { ...first, offset: 6, next_offset: 12, text: 'wörld\n' };
    const wire =
      `event: output\ndata: ${JSON.stringify(first)}\n\n: keepalive\n\n` +
      `event: output\ndata: ${JSON.stringify(second)}\n\n` +
      'event: end\ndata: {"status": "killed"}\n\n';
    const bytes = new TextEncoder().encode(wire);
    // Cut inside the multi-byte "ö" and inside an event, as a network may.
    const cut = wire.indexOf('ö') + 1;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, 7));
        controller.enqueue(bytes.slice(7, cut));
        controller.enqueue(bytes.slice(cut));
        controller.close();
      }
    });
    const { api, requests } = client(() => new Response(stream));
    const chunks: IOutputChunk[] = [];
    const status = await api.followOutput(
      'j1',
      0,
      chunk => chunks.push(chunk),
      new AbortController().signal
    );
    expect(status).toBe('killed');
    expect(chunks.map(c => c.text)).toEqual(['hello\n', 'wörld\n']);
    expect(requests[0].url).toBe(
      'http://lab.test/user/a%40b/forgather-tb/api/jobs/j1/output/stream?offset=0'
    );
  });

  it('stops following when aborted', async () => {
    const abort = new AbortController();
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(': keepalive\n\n'));
        abort.signal.addEventListener('abort', () =>
          controller.error(new DOMException('aborted', 'AbortError'))
        );
      }
    });
    const { api } = client(() => new Response(stream));
    const following = api.followOutput('j1', 0, () => undefined, abort.signal);
    abort.abort();
    expect(await following).toBeNull();
  });
});

describe('parseEvents', () => {
  it('keeps an unfinished event for later and skips comments', () => {
    const { events, rest } = parseEvents(
      ': hi\r\n\r\nevent: output\r\ndata: a\r\ndata: b\r\n\r\nevent: end\ndata: {'
    );
    expect(events).toEqual([{ event: 'output', data: 'a\nb' }]);
    expect(rest).toBe('event: end\ndata: {');
  });
});
