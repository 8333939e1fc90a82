/**
 * "Deploy as endpoint": the dialog's values → the request, a version → what the status view
 * shows, and polling a version until it is ready or failed. No DOM and no JupyterLab imports,
 * so it is unit-tested in plain node; the widgets are in deployDialog.ts.
 */
import { parseDatasets } from './format';
import { IDeployRequest, IDeployResult, IEndpointVersion, VersionState } from './types';

/** The bridge's endpoint names: 1-64 of a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit. */
export const ENDPOINT_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** States after which a version's state no longer changes by itself. */
export const VERSION_ENDED: ReadonlySet<string> = new Set(['ready', 'failed', 'stopped', 'draining']);

/** `notebooks/My Model v2.ipynb` → `my-model-v2`: the default endpoint name. */
export function endpointSlug(path: string): string {
  const base = path.split('/').pop() ?? '';
  const stem = base.replace(/\.(ipynb|py)$/i, '');
  const slug = stem
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64)
    .replace(/-+$/, '');
  return slug || 'endpoint';
}

/** What the dialog's fields hold, as typed. */
export interface IDeployFormValues {
  name: string;
  environment: string;
  replicas: string;
  public: boolean;
  datasets: string;
  message: string;
}

/** The request for `path`, or throws an Error whose message says which field is wrong. */
export function deployRequest(path: string, values: IDeployFormValues): IDeployRequest {
  const name = values.name.trim();
  if (!name) {
    throw new Error('Name the endpoint, e.g. iris');
  }
  if (!ENDPOINT_NAME_RE.test(name) || name.includes('..')) {
    throw new Error(
      `"${name}" is not an endpoint name: use up to 64 of a-z, 0-9, ".", "_" and "-", starting with a letter or digit`
    );
  }
  const request: IDeployRequest = { path, name };
  const replicasText = values.replicas.trim();
  const replicas = replicasText === '' ? 1 : Number(replicasText);
  if (!Number.isInteger(replicas) || replicas < 1) {
    throw new Error('Replicas must be a whole number of at least 1');
  }
  request.replicas = replicas;
  request.public = values.public;
  if (values.environment.trim()) {
    request.environment = values.environment.trim();
  }
  const data = parseDatasets(values.datasets).map(d => {
    const source = (d.ref ?? '').trim();
    return d.mount ? { source, mount: d.mount } : { source };
  });
  if (data.length) {
    request.data = data;
  }
  if (values.message.trim()) {
    request.message = values.message.trim();
  }
  return request;
}

/** How to call the endpoint from a shell: no key for a public one. */
export function curlExample(url: string, isPublic: boolean): string {
  return isPublic ? `curl ${url}` : `curl -H "Authorization: Bearer $FLOYD_API_KEY" ${url}`;
}

/** What the status view shows for one reading of the version. */
export interface IDeployStatus {
  phase: 'deploying' | 'ready' | 'failed';
  state: VersionState;
  title: string;
  detail: string;
  /** The endpoint's URL (ready only). */
  url?: string;
  /** This version's pinned URL (ready only). */
  versionUrl?: string;
  curl?: string;
  /** How to get a key (a private endpoint that is ready). */
  keyHint?: string;
  /** The end of the log of a failed version. */
  logTail: string[];
}

function replicasText(v: IEndpointVersion): string {
  return `${v.replicas?.ready ?? 0}/${v.replicas?.desired ?? 0}`;
}

export function deployStatus(result: IDeployResult, v: IEndpointVersion): IDeployStatus {
  const label = `${result.endpoint} v${v.number}`;
  if (v.state === 'ready') {
    return {
      phase: 'ready',
      state: v.state,
      title: `${label} is ready`,
      detail: `${replicasText(v)} replicas ready; it takes the endpoint's traffic.`,
      url: result.endpoint_url,
      versionUrl: v.url ?? undefined,
      curl: curlExample(result.endpoint_url, result.public),
      keyHint: result.public
        ? undefined
        : `Callers need an API key: create one with "floyd endpoint keys create ${result.name}" in a terminal.`,
      logTail: []
    };
  }
  if (VERSION_ENDED.has(v.state)) {
    const how = v.state === 'failed' ? 'failed' : `${v.state} before it was ready`;
    return {
      phase: 'failed',
      state: v.state,
      title: `${label} ${how}`,
      detail: v.reason || 'no reason was recorded',
      logTail: v.log_tail ?? []
    };
  }
  let detail = `${v.state}, replicas ready ${replicasText(v)}`;
  const starting = (v.replicas?.items ?? []).filter(r => !r.ready);
  if (starting.length && starting[0].restarts) {
    detail += ` (r${starting[0].index} restarted ${starting[0].restarts}×)`;
  }
  return { phase: 'deploying', state: v.state, title: `Deploying ${label}…`, detail, logTail: [] };
}

export interface IPollOptions {
  /** First wait between readings, ms (grows ×1.5 up to `maxIntervalMs`). */
  intervalMs?: number;
  maxIntervalMs?: number;
  /** Failed readings in a row before polling gives up (network blips are retried). */
  maxErrors?: number;
  /** True when the reader went away: polling stops and resolves with the last status. */
  cancelled?: () => boolean;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Read the version until it is ready or failed, calling `onStatus` with each new reading (the
 * deploy's own answer first). Resolves with the last status; rejects when `maxErrors` readings
 * in a row failed, or at once on a 4xx (the version or endpoint is gone).
 */
export async function pollVersion(
  api: { version(name: string, n: number): Promise<IEndpointVersion> },
  result: IDeployResult,
  onStatus: (status: IDeployStatus) => void,
  options: IPollOptions = {}
): Promise<IDeployStatus> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>(r => setTimeout(r, ms)));
  const maxInterval = options.maxIntervalMs ?? 2000;
  const maxErrors = options.maxErrors ?? 5;
  let interval = options.intervalMs ?? 500;
  let status = deployStatus(result, result);
  onStatus(status);
  let errors = 0;
  while (status.phase === 'deploying') {
    await sleep(interval);
    interval = Math.min(interval * 1.5, maxInterval);
    if (options.cancelled?.()) {
      break;
    }
    let v: IEndpointVersion;
    try {
      v = await api.version(result.name, result.number);
    } catch (error) {
      const code = (error as { status?: number }).status ?? 0;
      errors += 1;
      if ((code >= 400 && code < 500) || errors >= maxErrors) {
        throw error;
      }
      continue;
    }
    errors = 0;
    if (options.cancelled?.()) {
      break;
    }
    const next = deployStatus(result, v);
    if (next.title !== status.title || next.detail !== status.detail || next.phase !== status.phase) {
      onStatus(next);
    }
    status = next;
  }
  return status;
}
