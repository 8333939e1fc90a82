import { describe, expect, it, vi } from 'vitest';

import {
  IDeployFormValues,
  IDeployStatus,
  curlExample,
  deployRequest,
  deployStatus,
  endpointSlug,
  pollVersion
} from '../src/deploy';
import { FloydAPI, FloydAPIError } from '../src/handler';
import { IEndpointVersion } from '../src/types';
import { ENDPOINT_URL as URL_, deployResult as result, json, settingsWith, version } from './fixtures';

const values = (over: Partial<IDeployFormValues> = {}): IDeployFormValues => ({
  name: 'iris',
  environment: 'cpu',
  replicas: '1',
  public: false,
  datasets: '',
  message: '',
  ...over
});

describe('endpointSlug', () => {
  it('makes an endpoint name of the file name', () => {
    expect(endpointSlug('notebooks/My Model v2.ipynb')).toBe('my-model-v2');
    expect(endpointSlug('app.py')).toBe('app');
    expect(endpointSlug('serve_iris.py')).toBe('serve-iris');
    expect(endpointSlug('__init__.py')).toBe('init');
    expect(endpointSlug('Ünïcode!.ipynb')).toBe('n-code');
    expect(endpointSlug('___.py')).toBe('endpoint');
    expect(endpointSlug('a'.repeat(80) + '.py')).toHaveLength(64);
  });
});

describe('deployRequest', () => {
  it('turns the dialog values into the request body', () => {
    expect(deployRequest('code/app.py', values())).toEqual({
      path: 'code/app.py',
      name: 'iris',
      replicas: 1,
      public: false,
      environment: 'cpu'
    });
    expect(
      deployRequest(
        'code/model.ipynb',
        values({
          name: ' digits ',
          replicas: '3',
          public: true,
          environment: '',
          datasets: 'alice/mnist:3:digits\n12/output:model\n\nmnist',
          message: '  first version '
        })
      )
    ).toEqual({
      path: 'code/model.ipynb',
      name: 'digits',
      replicas: 3,
      public: true,
      data: [{ source: 'alice/mnist:3', mount: 'digits' }, { source: '12/output', mount: 'model' }, { source: 'mnist' }],
      message: 'first version'
    });
  });

  it('defaults replicas to 1 and sends JSON the server reads', () => {
    const body = deployRequest('app.py', values({ replicas: ' ' }));
    expect(body.replicas).toBe(1);
    expect(JSON.parse(JSON.stringify(body))).toEqual(body);
  });

  it('says which field is wrong', () => {
    expect(() => deployRequest('app.py', values({ name: '' }))).toThrow('Name the endpoint');
    expect(() => deployRequest('app.py', values({ name: 'My Model' }))).toThrow('not an endpoint name');
    expect(() => deployRequest('app.py', values({ name: '-x' }))).toThrow('not an endpoint name');
    expect(() => deployRequest('app.py', values({ name: 'a..b' }))).toThrow('not an endpoint name');
    expect(() => deployRequest('app.py', values({ replicas: '0' }))).toThrow('Replicas');
    expect(() => deployRequest('app.py', values({ replicas: '1.5' }))).toThrow('Replicas');
    expect(() => deployRequest('app.py', values({ datasets: ':x' }))).toThrow('no dataset');
  });
});

describe('deployStatus', () => {
  it('renders deploying with the replicas and restarts', () => {
    const s = deployStatus(
      result(),
      version({ replicas: { desired: 2, ready: 1, items: [{ index: 0, ready: true }, { index: 1, ready: false, restarts: 2 }] } })
    );
    expect(s.phase).toBe('deploying');
    expect(s.title).toBe('Deploying alice/iris v3…');
    expect(s.detail).toBe('deploying, replicas ready 1/2 (r1 restarted 2×)');
    expect(s.url).toBeUndefined();
  });

  it('renders ready with the URL, a curl line and how to get a key', () => {
    const s = deployStatus(result(), version({ state: 'ready', replicas: { desired: 2, ready: 2 } }));
    expect(s.phase).toBe('ready');
    expect(s.title).toBe('alice/iris v3 is ready');
    expect(s.url).toBe(URL_);
    expect(s.versionUrl).toBe(`${URL_}v3/`);
    expect(s.curl).toBe(`curl -H "Authorization: Bearer $FLOYD_API_KEY" ${URL_}`);
    expect(s.keyHint).toContain('floyd endpoint keys create iris');
    const pub = deployStatus(result({ public: true }), version({ state: 'ready' }));
    expect(pub.curl).toBe(`curl ${URL_}`);
    expect(pub.keyHint).toBeUndefined();
  });

  it('renders failed with the reason and the end of the log', () => {
    const s = deployStatus(
      result(),
      version({ state: 'failed', reason: 'replica r0 exited with code 1', log_tail: ['Traceback', 'NameError: x'] })
    );
    expect(s).toMatchObject({
      phase: 'failed',
      title: 'alice/iris v3 failed',
      detail: 'replica r0 exited with code 1',
      logTail: ['Traceback', 'NameError: x']
    });
    expect(deployStatus(result(), version({ state: 'stopped', reason: null })).title).toBe(
      'alice/iris v3 stopped before it was ready'
    );
    expect(deployStatus(result(), version({ state: 'failed', reason: null })).detail).toBe('no reason was recorded');
  });

  it('curlExample', () => {
    expect(curlExample('http://x/', true)).toBe('curl http://x/');
  });
});

describe('pollVersion', () => {
  const noSleep = () => Promise.resolve();

  it('reads the version until it is ready, rendering each new state once', async () => {
    const readings = [
      version({}),
      version({ replicas: { desired: 2, ready: 1 } }),
      version({ replicas: { desired: 2, ready: 1 } }),
      version({ state: 'ready', replicas: { desired: 2, ready: 2 } })
    ];
    const api = { version: vi.fn(async () => readings.shift() as IEndpointVersion) };
    const seen: IDeployStatus[] = [];
    const final = await pollVersion(api, result(), s => seen.push(s), { sleep: noSleep });
    expect(api.version).toHaveBeenCalledTimes(4);
    expect(api.version).toHaveBeenCalledWith('iris', 3);
    expect(seen.map(s => `${s.phase}: ${s.detail}`)).toEqual([
      'deploying: deploying, replicas ready 0/2',
      'deploying: deploying, replicas ready 1/2',
      "ready: 2/2 replicas ready; it takes the endpoint's traffic."
    ]);
    expect(final.phase).toBe('ready');
    expect(final.curl).toContain(URL_);
  });

  it('stops at failed with the log tail', async () => {
    const api = {
      version: vi.fn(async () => version({ state: 'failed', reason: 'no app', log_tail: ['ImportError'] }))
    };
    const seen: string[] = [];
    const final = await pollVersion(api, result(), s => seen.push(s.phase), { sleep: noSleep });
    expect(seen).toEqual(['deploying', 'failed']);
    expect(final.logTail).toEqual(['ImportError']);
  });

  it('backs off between readings, retries blips and gives up on a 4xx', async () => {
    const waits: number[] = [];
    const sleep = async (ms: number) => {
      waits.push(ms);
    };
    let n = 0;
    const api = {
      version: vi.fn(async () => {
        n += 1;
        if (n === 1) {
          throw new FloydAPIError('Cannot reach the Jupyter server', 0);
        }
        return n < 4 ? version({}) : version({ state: 'ready' });
      })
    };
    const final = await pollVersion(api, result(), () => undefined, { sleep, intervalMs: 100, maxIntervalMs: 200 });
    expect(final.phase).toBe('ready');
    expect(waits).toEqual([100, 150, 200, 200]);

    const gone = { version: vi.fn(async () => Promise.reject(new FloydAPIError('No endpoint alice/iris', 404))) };
    await expect(pollVersion(gone, result(), () => undefined, { sleep: noSleep })).rejects.toThrow('No endpoint');
    expect(gone.version).toHaveBeenCalledTimes(1);
    const down = { version: vi.fn(async () => Promise.reject(new FloydAPIError('HTTP 502', 502))) };
    await expect(pollVersion(down, result(), () => undefined, { sleep: noSleep, maxErrors: 3 })).rejects.toThrow(
      '502'
    );
    expect(down.version).toHaveBeenCalledTimes(3);
  });

  it('stops when the reader went away', async () => {
    let cancelled = false;
    const api = {
      version: vi.fn(async () => {
        cancelled = true;
        return version({});
      })
    };
    const final = await pollVersion(api, result(), () => undefined, { sleep: noSleep, cancelled: () => cancelled });
    expect(final.phase).toBe('deploying');
    expect(api.version).toHaveBeenCalledTimes(1);
  });

  it('a deploy that is already over is not polled', async () => {
    const api = { version: vi.fn() };
    const final = await pollVersion(api, result({ state: 'ready' }), () => undefined, { sleep: noSleep });
    expect(final.phase).toBe('ready');
    expect(api.version).not.toHaveBeenCalled();
  });
});

describe('FloydAPI deploy and version', () => {
  it('POSTs the dialog request to floyd/api/deploy and reads the version', async () => {
    const { settings, calls } = settingsWith(url =>
      url.endsWith('/deploy') ? json(202, result()) : json(200, version({ state: 'ready' }))
    );
    const api = new FloydAPI(settings);
    const request = deployRequest('code/app.py', values({ public: true }));
    await expect(api.deploy(request)).resolves.toMatchObject({ endpoint: 'alice/iris', number: 3 });
    expect(calls[0]).toMatchObject({ url: 'http://localhost:8888/user/alice/floyd/api/deploy', init: { method: 'POST' } });
    expect(JSON.parse(calls[0].init.body as string)).toEqual(request);
    await expect(api.version('iris', 3)).resolves.toMatchObject({ state: 'ready' });
    expect(calls[1]).toMatchObject({
      url: 'http://localhost:8888/user/alice/floyd/api/endpoints/iris/versions/3',
      init: { method: 'GET' }
    });
  });

  it("throws the server's message for a refused deploy", async () => {
    const { settings } = settingsWith(() => json(422, { status: 422, message: 'Environment nope is not offered' }));
    const error = await new FloydAPI(settings).deploy(deployRequest('app.py', values())).catch(e => e);
    expect(error).toBeInstanceOf(FloydAPIError);
    expect(error.status).toBe(422);
    expect(error.message).toBe('Environment nope is not offered');
  });
});
