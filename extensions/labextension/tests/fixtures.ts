/** Shared test fixtures: a fake Jupyter server connection and endpoint versions. */
import { ServerConnection } from '@jupyterlab/services';
import { vi } from 'vitest';

import { IDeployResult, IEndpointVersion } from '../src/types';

export type Call = { url: string; init: RequestInit };

/** Settings whose fetch answers from `reply` and records each request. */
export function settingsWith(reply: (url: string, init: RequestInit) => Response | Promise<Response>) {
  const calls: Call[] = [];
  const fetch = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(String(input), init);
    // makeRequest appends a cache-busting timestamp to GETs (settings.init.cache 'no-store')
    const url = request.url.replace(/[?&]\d{10,}$/, '');
    const body = request.method === 'GET' ? undefined : await request.text();
    const seen = { method: request.method, body, headers: request.headers } as RequestInit;
    calls.push({ url, init: seen });
    return reply(url, seen);
  });
  const settings = ServerConnection.makeSettings({
    baseUrl: 'http://localhost:8888/user/alice/',
    wsUrl: 'ws://localhost:8888/user/alice/',
    token: '',
    fetch: fetch as unknown as typeof globalThis.fetch,
    Request,
    Headers
  });
  return { settings, calls };
}

export const json = (status: number, body: unknown, statusText = '') =>
  new Response(JSON.stringify(body), { status, statusText, headers: { 'Content-Type': 'application/json' } });

export const ENDPOINT_URL = 'http://hub:8000/services/floyd/endpoints/alice/iris/';

/** Version 3 of alice/iris, deploying with 0 of 2 replicas ready, changed by `over`. */
export const version = (over: Partial<IEndpointVersion> = {}): IEndpointVersion => ({
  number: 3,
  state: 'deploying',
  reason: '',
  log_tail: [],
  replicas: { desired: 2, ready: 0, items: [] },
  url: `${ENDPOINT_URL}v3/`,
  ...over
});

/** The deploy's answer for that version, changed by `over`. */
export const deployResult = (over: Partial<IDeployResult> = {}): IDeployResult => ({
  ...version(),
  endpoint: 'alice/iris',
  name: 'iris',
  endpoint_url: ENDPOINT_URL,
  public: false,
  ...over
});
