/**
 * Pure helpers for the dialog and the Jobs panel: no DOM, no JupyterLab imports, so they are
 * unit-tested in plain node.
 */
import { IDatasetMount, IJob, IRunDataset, JobState, Params } from './types';

export const TERMINAL_STATES: ReadonlySet<string> = new Set([
  'succeeded',
  'failed',
  'stopped',
  'timed_out',
  'lost'
]);

export function isTerminal(state: JobState): boolean {
  return TERMINAL_STATES.has(state);
}

/** `3725` → `1h 2m 5s`; `42.4` → `42s`; null/negative → `—`. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds) || seconds < 0) {
    return '—';
  }
  let s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d > 0) {
    return `${d}d ${h}h ${m}m`;
  }
  if (h > 0) {
    return `${h}h ${m}m ${s}s`;
  }
  if (m > 0) {
    return `${m}m ${s}s`;
  }
  return `${s}s`;
}

/** CSS class of a job's state badge: one per state, `unknown` for anything new. */
export function stateClass(state: JobState): string {
  const known = ['queued', 'starting', 'running', 'succeeded', 'failed', 'stopped', 'timed_out', 'lost'];
  const name = known.includes(state) ? state.replace('_', '-') : 'unknown';
  return `floyd-JobState floyd-JobState-${name}`;
}

/** `{loss: 0.12345, acc: 0.9}` → `loss=0.1235 acc=0.9` (sorted by name). */
export function formatMetrics(metrics: { [name: string]: number } | null | undefined): string {
  if (!metrics) {
    return '';
  }
  return Object.keys(metrics)
    .sort()
    .map(name => `${name}=${formatNumber(metrics[name])}`)
    .join(' ');
}

export function formatNumber(value: number): string {
  if (typeof value !== 'number' || !isFinite(value)) {
    return String(value);
  }
  if (Number.isInteger(value)) {
    return String(value);
  }
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) {
    return value.toExponential(3);
  }
  return String(Number(value.toPrecision(4)));
}

export function gpuLabel(job: IJob): string {
  const gpus = job.resources?.gpus ?? 0;
  return gpus > 0 ? `${gpus} GPU${gpus > 1 ? 's' : ''}` : 'CPU';
}

/** One `ref[:mount]` per line, the server's `SRC[:MOUNT]` grammar: a last `:NAME` is the mount
 * unless NAME is a version (digits or `latest`) of a ref that has none yet, or holds a `/`.
 * So `alice/mnist:3:digits` mounts version 3 at `digits`, `alice/mnist:3` uses the default mount. */
export function parseDatasets(text: string): IDatasetMount[] {
  const out: IDatasetMount[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) {
      continue;
    }
    const i = line.lastIndexOf(':');
    const head = i < 0 ? '' : line.slice(0, i).trim();
    const tail = i < 0 ? '' : line.slice(i + 1).trim();
    if (i === 0) {
      throw new Error(`Dataset line "${line}" has no dataset before ":"`);
    }
    if (i < 0 || tail.includes('/')) {
      out.push({ ref: line });
    } else if (!tail) {
      out.push({ ref: head });
    } else if (!head.includes(':') && /^(\d+|latest)$/.test(tail)) {
      out.push({ ref: line });
    } else {
      out.push({ ref: head, mount: tail });
    }
  }
  return out;
}

/** The defaults' mounts as text lines; a mount whose ref the server could not trace is named
 * by its mount (as the server's `dataset_refs` does). */
export function formatDatasets(datasets: IDatasetMount[] | null | undefined): string {
  return (datasets ?? [])
    .map(d => (d.ref ? (d.mount ? `${d.ref}:${d.mount}` : d.ref) : d.mount ?? ''))
    .filter(Boolean)
    .join('\n');
}

/** What `POST run` gets for each dataset line. */
export function toRunDatasets(datasets: IDatasetMount[]): IRunDataset[] {
  return datasets
    .filter(d => d.ref)
    .map(d => {
      const out: IRunDataset = { source: d.ref as string, ref: d.ref as string };
      if (d.mount) {
        out.mount = d.mount;
      }
      return out;
    });
}

/** Values shown as `name = value` lines: strings raw unless they would read back as another type. */
export function formatParams(params: Params | null | undefined): string {
  if (!params) {
    return '';
  }
  return Object.keys(params)
    .map(name => `${name} = ${formatParamValue(params[name])}`)
    .join('\n');
}

function formatParamValue(value: unknown): string {
  if (typeof value === 'string') {
    const parsed = parseParamValue(value);
    return typeof parsed === 'string' && value.trim() === value ? value : JSON.stringify(value);
  }
  return JSON.stringify(value);
}

/** `1` → 1, `0.5` → 0.5, `true`/`True` → true, `None`/`null` → null, `"x"`/`'x'` → "x",
 * `[1, 2]` → [1, 2], anything else → the raw string. */
export function parseParamValue(raw: string): unknown {
  const text = raw.trim();
  if (text === 'True') {
    return true;
  }
  if (text === 'False') {
    return false;
  }
  if (text === 'None') {
    return null;
  }
  if (text.length >= 2 && text.startsWith("'") && text.endsWith("'")) {
    return text.slice(1, -1);
  }
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `name = value` (or `name: value`) per line; blank lines and `#` comments skipped. */
export function parseParams(text: string): Params {
  const params: Params = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) {
      continue;
    }
    const m = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(line);
    if (!m) {
      throw new Error(`Parameter line "${line}" is not "name = value"`);
    }
    const name = m[1].trim();
    if (!NAME.test(name)) {
      throw new Error(`Parameter name "${name}" is not a Python identifier`);
    }
    params[name] = parseParamValue(m[2]);
  }
  return params;
}

/** `90` → 5400 s; `1h30m`, `45m`, `2h`, `300s` → seconds; empty → undefined. */
export function parseMaxRuntime(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  if (!t) {
    return undefined;
  }
  if (/^\d+(\.\d+)?$/.test(t)) {
    return Math.round(parseFloat(t) * 60);
  }
  const m = /^(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?$/.exec(t);
  if (!m || !(m[1] || m[2] || m[3] || m[4])) {
    throw new Error(`Max runtime "${text}" is not minutes or like "1h30m"`);
  }
  const [d, h, mi, s] = [m[1], m[2], m[3], m[4]].map(v => (v ? parseInt(v, 10) : 0));
  return d * 86400 + h * 3600 + mi * 60 + s;
}

/** The file browser path of a job's output folder (relative to the server root, /floyd). */
export function outputPath(job: IJob): string {
  return `jobs/${job.number}/output`;
}

/** The executed notebook lands in the output folder under the notebook's own name. */
export function executedNotebookPath(job: IJob): string | null {
  const path = job.notebook ?? job.path ?? '';
  if (!path.endsWith('.ipynb')) {
    return null;
  }
  const base = path.split('/').pop() as string;
  return `${outputPath(job)}/${base}`;
}
