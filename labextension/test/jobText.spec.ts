import { nullTranslator } from '@jupyterlab/translation';
import { describe, expect, it } from 'vitest';

import {
  age,
  exposureWarning,
  firstCopyFraction,
  firstCopyText,
  isOpenable,
  loaderText,
  mirrorText,
  skippedText,
  statusText,
  storeName
} from '../src/jobText';
import { IJob } from '../src/tokens';

const trans = nullTranslator.load('jupyter_forgather_tb');

describe('jobs in words', () => {
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
      '12 objects, 3.2 MiB, synced 5 s ago'
    );
    expect(
      mirrorText(
        { ...mirror, objects: 1, bytes: 812, last_sync: null },
        trans,
        now
      )
    ).toBe('1 object, 812 B, not synced yet');
  });

  it('adds the requests a mirror made when the job reports them, and names its store', () => {
    const now = Date.parse('2026-01-01T12:00:00Z');
    const mirror = {
      last_sync: '2026-01-01T11:59:55Z',
      objects: 2,
      bytes: 2048,
      bytes_fetched: 2048,
      syncs: 4,
      skipped: [],
      skipped_count: 0,
      last_error: null,
      requests: 41,
      next_sync: '2026-01-01T12:00:05Z'
    };
    expect(mirrorText(mirror, trans, now)).toBe(
      '2 objects, 2 KiB, synced 5 s ago, 41 requests'
    );
    expect(storeName('gs://b/p')).toBe('GCS');
    expect(storeName('abfs://c/p')).toBe('Azure');
    expect(storeName('ssh://host/p')).toBe('SSH');
    expect(storeName('s3://b')).toBe('S3');
  });

  it("shows a first copy's progress and the time it has left", () => {
    const copy = {
      files: 3,
      files_total: 10,
      bytes: 1024 * 1024,
      bytes_total: 4 * 1024 * 1024,
      eta_seconds: 95,
      done: false
    };
    expect(firstCopyText(copy, trans)).toBe(
      '3 of 10 files, 1 MiB of 4 MiB, about 2 min left'
    );
    expect(firstCopyText({ ...copy, eta_seconds: null }, trans)).toBe(
      '3 of 10 files, 1 MiB of 4 MiB'
    );
    expect(firstCopyFraction(copy)).toBe(0.25);
    expect(
      firstCopyFraction({ ...copy, bytes_total: 0, bytes: 0 })
    ).toBeCloseTo(0.3);
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
