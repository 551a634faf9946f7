import { nullTranslator } from '@jupyterlab/translation';
import { describe, expect, it } from 'vitest';

import {
  age,
  compareTitle,
  defaultTitle,
  EMPTY_VALUES,
  exposureWarning,
  fieldOf,
  isOpenable,
  isS3,
  loaderText,
  mirrorText,
  restoreValues,
  size,
  toggleLogdir,
  skippedText,
  statusText,
  toLaunchRequest,
  valuesFromDefaults
} from '../src/form';
import { IJob } from '../src/tokens';

const trans = nullTranslator.load('jupyter_forgather_tb');

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

  it('sends a sync interval only for an S3 log directory', () => {
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
    expect(isS3('gs://bucket/x')).toBe(false);
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

  it('shows the queue position of queued jobs', () => {
    expect(statusText({ status: 'queued', queue_position: 2 }, trans)).toBe(
      'queued #2'
    );
    expect(statusText({ status: 'running', queue_position: null }, trans)).toBe(
      'running'
    );
  });

  it('says a suspended job wakes when opened, and that it can be opened', () => {
    expect(
      statusText({ status: 'suspended', queue_position: null }, trans)
    ).toBe('suspended, wakes when opened');
    expect(isOpenable({ status: 'suspended' })).toBe(true);
    expect(isOpenable({ status: 'running' })).toBe(true);
    expect(isOpenable({ status: 'queued' })).toBe(false);
    expect(isOpenable({ status: 'killed' })).toBe(false);
  });

  it('sums up an S3 mirror', () => {
    const now = Date.parse('2026-01-01T12:00:00Z');
    const mirror = {
      last_sync: '2026-01-01T11:59:55Z',
      objects: 12,
      bytes: 3_400_000,
      bytes_fetched: 3_500_000,
      syncs: 4,
      skipped: [],
      skipped_count: 0,
      last_error: null
    };
    expect(mirrorText(mirror, trans, now)).toBe(
      '12 objects, 3.4 MB, synced 5 s ago'
    );
    expect(
      mirrorText(
        { ...mirror, objects: 1, bytes: 812, last_sync: null },
        trans,
        now
      )
    ).toBe('1 object, 812 B, not synced yet');
    expect(size(1_500_000_000)).toBe('1.5 GB');
  });

  it('counts the keys an S3 mirror left out, and lists them for a tooltip', () => {
    const now = Date.parse('2026-01-01T12:00:00Z');
    const mirror = {
      last_sync: '2026-01-01T11:59:55Z',
      objects: 2,
      bytes: 812,
      bytes_fetched: 812,
      syncs: 1,
      skipped: [{ key: 'runs/a/plugins/p', reason: 'a folder holds it' }],
      skipped_count: 3,
      last_error: null
    };
    expect(mirrorText(mirror, trans, now)).toBe(
      '2 objects, 3 skipped, 812 B, synced 5 s ago'
    );
    expect(skippedText(mirror, trans)).toBe(
      'Not mirrored:\nruns/a/plugins/p: a folder holds it\nand 2 more'
    );
    expect(
      skippedText({ ...mirror, skipped: [], skipped_count: 0 }, trans)
    ).toBe('');
  });

  it('names the loader, and warns of an open port', () => {
    expect(
      loaderText({ name: 'python', private_network: false }, trans)
    ).toEqual({
      text: 'Python loader',
      warn: false
    });
    expect(loaderText({ name: 'rust', private_network: true }, trans)).toEqual({
      text: 'Rust loader, private network',
      warn: false
    });
    expect(
      loaderText({ name: 'rust', private_network: false }, trans).warn
    ).toBe(true);
  });

  it('warns when others can open a job without logging in to Jupyter', () => {
    const options = { host: '127.0.0.1' } as IJob['options'];
    const job = { port: 6006, transport: 'tcp' as const, options };
    expect(exposureWarning({ ...job, exposure: 'local' }, trans)).toBe(
      "Listening on port 6006 of 127.0.0.1: every user of this machine can open it without Jupyter's login."
    );
    expect(
      exposureWarning(
        {
          ...job,
          exposure: 'network',
          options: { ...options, host: null }
        },
        trans
      )
    ).toBe(
      "Listening on port 6006 of all interfaces: anyone who can reach this machine can open it without Jupyter's login."
    );
    // A socket job: nobody else; or its Rust loader's port, which the loader line shows.
    expect(
      exposureWarning(
        {
          ...job,
          transport: 'unix',
          port: null,
          exposure: 'none'
        },
        trans
      )
    ).toBeNull();
    expect(
      exposureWarning(
        {
          ...job,
          transport: 'unix',
          port: null,
          exposure: 'local'
        },
        trans
      )
    ).toBeNull();
  });

  it('says ages shortly', () => {
    const now = Date.parse('2026-01-01T12:00:00Z');
    expect(age('2026-01-01T11:59:48Z', trans, now)).toBe('12 s');
    expect(age('2026-01-01T11:57:00Z', trans, now)).toBe('3 min');
    expect(age('2026-01-01T07:00:00Z', trans, now)).toBe('5 h');
    expect(age('2025-12-30T12:00:00Z', trans, now)).toBe('2 d');
    expect(age('2026-01-01T12:00:05Z', trans, now)).toBe('0 s');
  });
});
