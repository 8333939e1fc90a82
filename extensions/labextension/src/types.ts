/** Shapes of the server extension's JSON (routes under `<base_url>floyd/api/`). */

export type JobState =
  | 'queued'
  | 'starting'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'stopped'
  | 'timed_out'
  | 'lost'
  | string;

export interface IDatasetMount {
  /** `alice/mnist:3`, or a job output `alice/proj/12/output`; null when the bridge cannot tell. */
  ref: string | null;
  mount?: string;
}

/** A dataset as POSTed to `run`: the server reads `source` (its `SRC[:MOUNT]` grammar's SRC) and
 * `mount`; `ref` repeats `source` for readers of the `{ref, mount}` shape. */
export interface IRunDataset {
  source: string;
  ref: string;
  mount?: string;
}

export type Params = { [name: string]: unknown };

export interface IJob {
  id: string;
  number: number;
  state: JobState;
  reason?: string | null;
  exit_code?: number | null;
  environment?: string | null;
  resources?: { gpus?: number | null } | null;
  duration?: number | null;
  latest_metrics?: { [name: string]: number } | null;
  created_at?: string | null;
  /** Optional: the file the job ran, when the bridge reports it. */
  path?: string | null;
  notebook?: string | null;
  command?: string | null;
  message?: string | null;
}

export interface IEnvironment {
  name: string;
  description?: string;
  gpu?: boolean;
}

export interface IDefaults {
  environment: string;
  environments: IEnvironment[];
  datasets: IDatasetMount[];
  params: Params;
}

export interface IRunRequest {
  path: string;
  environment?: string;
  gpus?: number;
  datasets?: IRunDataset[];
  params?: Params;
  max_runtime?: number;
  message?: string;
}

export interface IMetricPoint {
  step: number;
  value: number;
}

export interface IMetrics {
  series: { [name: string]: IMetricPoint[] };
}
