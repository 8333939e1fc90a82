/** Typed requests to the server extension (`<base_url>floyd/api/...`). */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  IDefaults,
  IDeployRequest,
  IDeployResult,
  IEndpointVersion,
  IJob,
  IMetrics,
  IRunRequest,
  ISchedule
} from './types';

export const API_NAMESPACE = 'floyd/api';

/** An API failure: `message` is the server's user-facing message (its JSON `{status, message}`). */
export class FloydAPIError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
    this.name = 'FloydAPIError';
  }
}

/** The message a person should see for a failed response: the JSON body's `message`, else its
 * tornado-style `reason`, else the HTTP status line. */
export async function errorMessage(response: Response): Promise<string> {
  let text = '';
  try {
    text = await response.text();
  } catch {
    // body unreadable: fall back to the status line
  }
  if (text) {
    try {
      const body = JSON.parse(text);
      if (body && typeof body.message === 'string' && body.message) {
        return body.message;
      }
      if (body && typeof body.reason === 'string' && body.reason) {
        return body.reason;
      }
    } catch {
      // not JSON (a proxy's HTML error page, say)
    }
  }
  const statusText = response.statusText ? ` ${response.statusText}` : '';
  return `Request failed: HTTP ${response.status}${statusText}`;
}

/** `endPoint` may carry a query string; it is kept out of the path join. */
export function apiUrl(endPoint: string, settings: ServerConnection.ISettings): string {
  const q = endPoint.indexOf('?');
  const path = q < 0 ? endPoint : endPoint.slice(0, q);
  const query = q < 0 ? '' : endPoint.slice(q);
  return URLExt.join(settings.baseUrl, API_NAMESPACE, path) + query;
}

/** Call the API and return its parsed JSON; throws `FloydAPIError` (status 0 for network errors). */
export async function requestAPI<T>(
  endPoint = '',
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = apiUrl(endPoint, settings);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new FloydAPIError(`Cannot reach the Jupyter server: ${reason}`, 0);
  }
  if (!response.ok) {
    throw new FloydAPIError(await errorMessage(response), response.status);
  }
  const text = await response.text();
  if (!text) {
    return {} as T;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new FloydAPIError(`The server sent a response that is not JSON: ${text.slice(0, 200)}`, response.status);
  }
}

function jsonInit(method: string, body?: unknown): RequestInit {
  return {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
    headers: { 'Content-Type': 'application/json' }
  };
}

/** The API used by the dialog and the panel; `settings` is injectable for tests. */
export class FloydAPI {
  constructor(readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()) {}

  async run(request: IRunRequest): Promise<IJob> {
    const reply = await requestAPI<{ job: IJob }>('run', jsonInit('POST', request), this.settings);
    return reply.job;
  }

  /** The same form as `run`, with `schedule`: stored as a schedule that runs it on its cron. */
  async schedule(request: IRunRequest): Promise<ISchedule> {
    const reply = await requestAPI<{ schedule: ISchedule }>('run', jsonInit('POST', request), this.settings);
    return reply.schedule;
  }

  async jobs(): Promise<IJob[]> {
    const reply = await requestAPI<{ items: IJob[] }>('jobs', {}, this.settings);
    return reply.items ?? [];
  }

  job(n: number): Promise<IJob> {
    return requestAPI<IJob>(`jobs/${n}`, {}, this.settings);
  }

  metrics(n: number): Promise<IMetrics> {
    return requestAPI<IMetrics>(`jobs/${n}/metrics`, {}, this.settings);
  }

  async stop(n: number): Promise<IJob> {
    const reply = await requestAPI<{ job?: IJob } & Partial<IJob>>(
      `jobs/${n}/stop`,
      jsonInit('POST', {}),
      this.settings
    );
    return (reply.job ?? reply) as IJob;
  }

  /** Snapshot the code and deploy a new version of endpoint `request.name` (state deploying). */
  deploy(request: IDeployRequest): Promise<IDeployResult> {
    return requestAPI<IDeployResult>('deploy', jsonInit('POST', request), this.settings);
  }

  /** One version of one of the project owner's endpoints: poll it until ready or failed. */
  version(name: string, n: number): Promise<IEndpointVersion> {
    return requestAPI<IEndpointVersion>(
      `endpoints/${encodeURIComponent(name)}/versions/${n}`,
      {},
      this.settings
    );
  }

  defaults(path: string): Promise<IDefaults> {
    return requestAPI<IDefaults>(`defaults?path=${encodeURIComponent(path)}`, {}, this.settings);
  }

  /** The URL for an EventSource: a same-origin GET authenticates with the Lab page's cookie;
   * the token is appended too where the page has one (token-only setups). */
  logsUrl(n: number): string {
    let url = apiUrl(`jobs/${n}/logs`, this.settings) + '?follow=1';
    if (this.settings.token) {
      url += `&token=${encodeURIComponent(this.settings.token)}`;
    }
    // JupyterHub's single-user server (4.1+) checks XSRF on cookie-authenticated GETs that are
    // not navigations: an EventSource sends no X-XSRFToken header, so pass the _xsrf cookie.
    const xsrf = typeof document !== 'undefined' ? document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/) : null;
    if (xsrf) {
      url += `&_xsrf=${encodeURIComponent(decodeURIComponent(xsrf[1]))}`;
    }
    return url;
  }
}
