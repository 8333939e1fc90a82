import { ServerConnection } from '@jupyterlab/services';
import { describe, expect, it } from 'vitest';

import { FloydAPI, FloydAPIError, requestAPI } from '../src/handler';
import { json, settingsWith } from './fixtures';

describe('requestAPI', () => {
  it('calls floyd/api under the server base URL and parses JSON', async () => {
    const { settings, calls } = settingsWith(() => json(200, { items: [] }));
    await expect(requestAPI('jobs', {}, settings)).resolves.toEqual({ items: [] });
    expect(calls[0].url).toBe('http://localhost:8888/user/alice/floyd/api/jobs');
  });

  it('throws the JSON body message with its status', async () => {
    const { settings } = settingsWith(() => json(422, { status: 422, message: 'Environment "gpu-big" has no GPU' }));
    const error = await requestAPI('run', { method: 'POST', body: '{}' }, settings).catch(e => e);
    expect(error).toBeInstanceOf(FloydAPIError);
    expect(error.message).toBe('Environment "gpu-big" has no GPU');
    expect(error.status).toBe(422);
  });

  it('falls back to a tornado reason, then to the status line', async () => {
    let { settings } = settingsWith(() => json(404, { reason: 'Not Found' }));
    await expect(requestAPI('jobs/9', {}, settings)).rejects.toThrow('Not Found');
    ({ settings } = settingsWith(() => new Response('<html>Bad Gateway</html>', { status: 502, statusText: 'Bad Gateway' })));
    await expect(requestAPI('jobs', {}, settings)).rejects.toThrow('Request failed: HTTP 502 Bad Gateway');
  });

  it('maps a network failure to status 0 with a readable message', async () => {
    const { settings } = settingsWith(() => {
      throw new TypeError('Failed to fetch');
    });
    const error = await requestAPI('jobs', {}, settings).catch(e => e);
    expect(error).toBeInstanceOf(FloydAPIError);
    expect(error.status).toBe(0);
    expect(error.message).toMatch(/Cannot reach the Jupyter server: .*Failed to fetch/);
  });

  it('refuses a body that is not JSON', async () => {
    const { settings } = settingsWith(() => new Response('hello', { status: 200 }));
    await expect(requestAPI('jobs', {}, settings)).rejects.toThrow(/not JSON: hello/);
  });
});

describe('FloydAPI', () => {
  it('posts a run and returns its job', async () => {
    const { settings, calls } = settingsWith(() => json(201, { job: { id: 'alice/proj/3', number: 3, state: 'queued' } }));
    const api = new FloydAPI(settings);
    const job = await api.run({ path: 'train.ipynb', gpus: 1, params: { lr: 0.1 } });
    expect(job.number).toBe(3);
    expect(calls[0].url).toBe('http://localhost:8888/user/alice/floyd/api/run');
    expect(calls[0].init.method).toBe('POST');
    expect(JSON.parse(calls[0].init.body as string)).toEqual({ path: 'train.ipynb', gpus: 1, params: { lr: 0.1 } });
  });

  it('posts a run with a schedule and returns the stored schedule', async () => {
    const stored = { owner: 'alice', name: 'nightly', cron: '0 3 * * *', timezone: 'Europe/Berlin', next_run_at: 'x' };
    const { settings, calls } = settingsWith(() => json(201, { schedule: stored }));
    const request = { path: 'train.ipynb', schedule: { name: 'nightly', cron: '0 3 * * *', timezone: 'Europe/Berlin' } };
    const schedule = await new FloydAPI(settings).schedule(request);
    expect(schedule).toEqual(stored);
    expect(calls[0].url).toBe('http://localhost:8888/user/alice/floyd/api/run');
    expect(JSON.parse(calls[0].init.body as string)).toEqual(request);
  });

  it('encodes the defaults path as a query string', async () => {
    const { settings, calls } = settingsWith(() =>
      json(200, { environment: 'pytorch', environments: [], datasets: [], params: {} })
    );
    await new FloydAPI(settings).defaults('code/my nb.ipynb');
    expect(calls[0].url).toBe('http://localhost:8888/user/alice/floyd/api/defaults?path=code%2Fmy%20nb.ipynb');
  });

  it('lists jobs, gets metrics and stops a job', async () => {
    const { settings, calls } = settingsWith(url => {
      if (url.endsWith('/jobs')) {
        return json(200, { items: [{ id: 'a/p/1', number: 1, state: 'running' }] });
      }
      if (url.endsWith('/metrics')) {
        return json(200, { series: { loss: [{ step: 1, value: 0.5 }] } });
      }
      return json(200, { job: { id: 'a/p/1', number: 1, state: 'stopped' } });
    });
    const api = new FloydAPI(settings);
    expect((await api.jobs())[0].state).toBe('running');
    expect((await api.metrics(1)).series.loss).toEqual([{ step: 1, value: 0.5 }]);
    expect((await api.stop(1)).state).toBe('stopped');
    expect(calls.map(c => `${c.init.method} ${c.url.replace('http://localhost:8888/user/alice/floyd/api/', '')}`)).toEqual([
      'GET jobs',
      'GET jobs/1/metrics',
      'POST jobs/1/stop'
    ]);
  });

  it('builds the EventSource URL for the log stream', () => {
    const { settings } = settingsWith(() => json(200, {}));
    expect(new FloydAPI(settings).logsUrl(7)).toBe('http://localhost:8888/user/alice/floyd/api/jobs/7/logs?follow=1');
    const withToken = { ...settings, token: 'abc' } as ServerConnection.ISettings;
    expect(new FloydAPI(withToken).logsUrl(7)).toBe(
      'http://localhost:8888/user/alice/floyd/api/jobs/7/logs?follow=1&token=abc'
    );
  });
});
