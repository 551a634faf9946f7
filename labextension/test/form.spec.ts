import { describe, expect, it } from 'vitest';

import {
  compareTitle,
  defaultTitle,
  EMPTY_VALUES,
  fieldOf,
  isRemote,
  remoteProtocol,
  restoreValues,
  toggleLogdir,
  toLaunchRequest,
  valuesFromDefaults
} from '../src/form';

describe('toLaunchRequest', () => {
  it('sends blanks as "not given" and numbers as numbers', () => {
    const request = toLaunchRequest({
      ...EMPTY_VALUES,
      logdir: '  runs/a  ',
      port: ' 6006 ',
      priority: '',
      reload_interval: '2.5'
    });
    expect(request).toEqual({
      logdir: 'runs/a',
      port: 6006,
      priority: null,
      bind_all: false,
      window_title: null,
      reload_interval: 2.5,
      reload_multifile: null,
      samples_per_plugin: null,
      host: null,
      load_fast: 'auto',
      sync_interval: null
    });
  });

  it('sends a sync interval only for a remote log directory', () => {
    const local = toLaunchRequest({
      ...EMPTY_VALUES,
      logdir: 'runs',
      sync_interval: '9'
    });
    expect(local.sync_interval).toBeNull();
    const s3 = toLaunchRequest({
      ...EMPTY_VALUES,
      logdir: ' S3://bucket/runs ',
      sync_interval: '9',
      load_fast: 'false'
    });
    expect(s3.sync_interval).toBe(9);
    expect(s3.load_fast).toBe('false');
    const ssh = toLaunchRequest({
      ...EMPTY_VALUES,
      logdir: 'ssh://me@login1:2222/runs',
      sync_interval: '30'
    });
    expect(ssh.sync_interval).toBe(30);
  });

  it('knows each remote scheme and its aliases, and nothing else', () => {
    expect(remoteProtocol('gs://bucket/x')).toBe('gs');
    expect(remoteProtocol(' ABFS://container/x')).toBe('az');
    expect(remoteProtocol('az://container')).toBe('az');
    expect(remoteProtocol('sftp://host/p')).toBe('ssh');
    expect(remoteProtocol('s3://b/p')).toBe('s3');
    expect(remoteProtocol('http://host/p')).toBeNull();
    expect(remoteProtocol('runs/s3://x')).toBeNull();
    expect(isRemote('runs')).toBe(false);
  });

  it('sends a connection only with a remote log directory, and only when one is chosen', () => {
    const remote = toLaunchRequest({
      ...EMPTY_VALUES,
      logdir: 's3://bucket/runs',
      connection: 'minio'
    });
    expect(remote.connection).toBe('minio');
    const local = toLaunchRequest({
      ...EMPTY_VALUES,
      logdir: 'runs',
      connection: 'minio'
    });
    expect('connection' in local).toBe(false);
    const standard = toLaunchRequest({
      ...EMPTY_VALUES,
      logdir: 's3://bucket/runs',
      connection: ''
    });
    expect('connection' in standard).toBe(false);
  });

  it('sends what is not a number as typed, for the server to explain', () => {
    const request = toLaunchRequest({
      ...EMPTY_VALUES,
      logdir: 'x',
      port: 'abc',
      reload_interval: 'fast'
    });
    expect(request.port).toBe('abc');
    expect(request.reload_interval).toBe('fast');
  });

  it('maps the multifile choice and drops the host under bind-all', () => {
    const on = toLaunchRequest({
      ...EMPTY_VALUES,
      reload_multifile: 'on',
      host: '::1'
    });
    expect(on.reload_multifile).toBe(true);
    expect(on.host).toBe('::1');
    const off = toLaunchRequest({
      ...EMPTY_VALUES,
      reload_multifile: 'off',
      host: '::1',
      bind_all: true
    });
    expect(off.reload_multifile).toBe(false);
    expect(off.host).toBeNull();
    expect(off.bind_all).toBe(true);
  });

  it('leaves a blank memory limit out, sends bytes as a number and sizes as typed', () => {
    const blank = toLaunchRequest({ ...EMPTY_VALUES, memory_limit: '  ' });
    expect('memory_limit' in JSON.parse(JSON.stringify(blank))).toBe(false);
    expect(toLaunchRequest(EMPTY_VALUES).memory_limit).toBeUndefined();
    const bytes = toLaunchRequest({
      ...EMPTY_VALUES,
      memory_limit: ' 1073741824 '
    });
    expect(bytes.memory_limit).toBe(1073741824);
    expect(
      toLaunchRequest({ ...EMPTY_VALUES, memory_limit: ' 2G ' }).memory_limit
    ).toBe('2G');
    expect(
      toLaunchRequest({ ...EMPTY_VALUES, memory_limit: '512 MiB' }).memory_limit
    ).toBe('512 MiB');
    // Too large to be a safe integer: the server reads it as typed and explains.
    expect(
      toLaunchRequest({ ...EMPTY_VALUES, memory_limit: '99999999999999999999' })
        .memory_limit
    ).toBe('99999999999999999999');
  });

  it('keeps the title and samples, trimmed', () => {
    const request = toLaunchRequest({
      ...EMPTY_VALUES,
      window_title: '  sweep ',
      samples_per_plugin: 'scalars=10 '
    });
    expect(request.window_title).toBe('sweep');
    expect(request.samples_per_plugin).toBe('scalars=10');
  });

  it('launches two or more ticked folders as one comparison, instead of the log directory', () => {
    const compare = toLaunchRequest({
      ...EMPTY_VALUES,
      logdir: 's3://bucket/runs',
      sync_interval: '9',
      logdirs: ['a/runs', 'b/other']
    });
    expect(compare.logdirs).toEqual(['a/runs', 'b/other']);
    expect('logdir' in compare).toBe(false);
    expect(compare.sync_interval).toBeNull();
    const one = toLaunchRequest({
      ...EMPTY_VALUES,
      logdir: 'runs',
      logdirs: ['a/runs']
    });
    expect(one.logdir).toBe('runs');
    expect('logdirs' in one).toBe(false);
  });

  it('ticks and unticks folders in the order ticked', () => {
    expect(toggleLogdir(undefined, 'a')).toEqual(['a']);
    expect(toggleLogdir(['a'], 'b')).toEqual(['a', 'b']);
    expect(toggleLogdir(['a', 'b'], 'a')).toEqual(['b']);
  });
});

describe('settings and remembered values', () => {
  it('turns settings defaults into form values', () => {
    expect(
      valuesFromDefaults({
        logdir: 'runs',
        port: 6006,
        priority: 3,
        bindAll: true,
        reloadInterval: 30,
        reloadMultifile: false,
        samplesPerPlugin: 'images=4',
        host: '::1',
        loadFast: 'true',
        syncInterval: 10
      })
    ).toEqual({
      logdir: 'runs',
      port: '6006',
      priority: '3',
      bind_all: true,
      window_title: '',
      reload_interval: '30',
      reload_multifile: 'off',
      samples_per_plugin: 'images=4',
      host: '::1',
      load_fast: 'true',
      sync_interval: '10'
    });
    expect(valuesFromDefaults({})).toEqual(EMPTY_VALUES);
  });

  it('takes the memory limit from settings, blank meaning the server default', () => {
    expect(valuesFromDefaults({ memoryLimit: ' 4G ' }).memory_limit).toBe('4G');
    expect(
      valuesFromDefaults({ memoryLimit: '' }).memory_limit
    ).toBeUndefined();
    const restored = restoreValues(
      { memory_limit: '512M' },
      valuesFromDefaults({ memoryLimit: '4G' })
    );
    expect(restored.memory_limit).toBe('512M');
    expect(
      restoreValues({ memory_limit: 512 }, valuesFromDefaults({})).memory_limit
    ).toBeUndefined();
  });

  it('restores only known fields of the right type', () => {
    const base = valuesFromDefaults({ logdir: 'default' });
    const restored = restoreValues(
      {
        logdir: 'saved',
        port: 6006,
        bind_all: 'yes',
        reload_multifile: 'sometimes',
        priority: '5',
        load_fast: 'sometimes',
        unknown: 'x'
      },
      base
    );
    expect(restored).toEqual({ ...base, logdir: 'saved', priority: '5' });
    expect(restoreValues({ logdirs: ['a', 3, 'b'] }, base).logdirs).toEqual([
      'a',
      'b'
    ]);
    expect(restoreValues({ logdirs: 'a' }, base).logdirs).toBeUndefined();
    expect(restoreValues(null, base)).toEqual(base);
    expect(restoreValues('garbage', base)).toEqual(base);
  });
});

describe('display helpers', () => {
  it('maps only form fields', () => {
    expect(fieldOf('reload_interval')).toBe('reload_interval');
    expect(fieldOf('memory_limit')).toBe('memory_limit');
    expect(fieldOf('logdirs')).toBe('logdirs');
    expect(fieldOf('body')).toBeNull();
    expect(fieldOf(null)).toBeNull();
  });

  it('names a comparison after its folders, made unique, in name order', () => {
    expect(compareTitle(['runs/b', 'other/a/'])).toBe('compare: a, b');
    expect(compareTitle(['x/runs', 'y/runs', 'z/runs'])).toBe(
      'compare: runs, runs-2, runs-3'
    );
  });

  it('names the default title after the last folder', () => {
    expect(defaultTitle('runs/exp1/')).toBe('exp1');
    expect(defaultTitle('/abs/path')).toBe('path');
    expect(defaultTitle('  ')).toBe('TensorBoard');
  });
});
