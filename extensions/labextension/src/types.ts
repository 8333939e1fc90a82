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
  /** Present: store it as a schedule (cron time table) instead of running it now. */
  schedule?: IScheduleRequest;
}

export interface IScheduleRequest {
  name: string;
  cron: string;
  timezone?: string;
}

/** A schedule as the bridge answers it (`/api/v1/schedules/{owner}/{name}`). */
export interface ISchedule {
  owner: string;
  name: string;
  cron: string;
  timezone: string;
  next_run_at: string | null;
}

export interface IMetricPoint {
  step: number;
  value: number;
}

export interface IMetrics {
  series: { [name: string]: IMetricPoint[] };
}

/** `POST deploy`: a new version of endpoint `name` from the workspace's code. */
export interface IDeployRequest {
  /** The clicked file (relative to the Lab's root); the entry unless `entry` is given. */
  path: string;
  name: string;
  entry?: string;
  replicas?: number;
  public?: boolean;
  environment?: string;
  cpus?: number;
  memory?: string;
  gpus?: number;
  data?: { source: string; mount?: string }[];
  message?: string;
}

export type VersionState = 'deploying' | 'ready' | 'failed' | 'draining' | 'stopped' | string;

/** An endpoint version as the bridge records it (`GET endpoints/<name>/versions/<n>`). */
export interface IEndpointVersion {
  number: number;
  state: VersionState;
  reason?: string | null;
  /** The last lines of a failed version's log. */
  log_tail?: string[] | null;
  entry?: string | null;
  project?: string | null;
  snapshot?: string | null;
  environment?: string | null;
  replicas?: { desired: number; ready: number; items?: { index: number; ready: boolean; restarts?: number }[] };
  message?: string | null;
  /** This version's pinned URL (`…/v<N>/`). */
  url?: string | null;
}

/** The answer of `POST deploy`: the version (state deploying) plus the endpoint. */
export interface IDeployResult extends IEndpointVersion {
  /** `OWNER/NAME`. */
  endpoint: string;
  name: string;
  /** The endpoint's URL (newest healthy version). */
  endpoint_url: string;
  public: boolean;
  created?: boolean;
  upload?: { files: number; sent_files: number; sent_bytes: number; duplicate?: boolean };
}
