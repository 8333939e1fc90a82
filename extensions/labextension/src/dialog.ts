/**
 * The "Run as job" dialog. A small modal of our own rather than apputils' Dialog, because a
 * failed submit must keep the dialog open with the bridge's message shown inline.
 */
import { FloydAPI } from './handler';
import {
  formatDatasets,
  formatParams,
  parseDatasets,
  parseMaxRuntime,
  parseParams,
  toRunDatasets
} from './format';
import { FloydForm, el, showFormDialog } from './formDialog';
import { IDefaults, IJob, IRunRequest } from './types';

export { el };

/** The form: fields prefilled from `GET floyd/api/defaults?path=`. */
export class RunJobForm extends FloydForm<IRunRequest> {
  readonly gpus = el('input', { name: 'gpus', type: 'number', min: '0', max: '16', step: '1', value: '0' });
  readonly datasets = el('textarea', {
    name: 'datasets',
    rows: '3',
    placeholder: 'one per line: owner/dataset:version[:mount] or 12/output[:mount]'
  });
  readonly params = el('textarea', { name: 'params', rows: '4', placeholder: 'one per line: name = value' });
  readonly maxRuntime = el('input', { name: 'max_runtime', type: 'text', placeholder: 'minutes, or like 2h30m (empty: no limit)' });
  readonly message = el('input', { name: 'message', type: 'text', placeholder: 'what this run is for' });

  constructor(path: string) {
    super(path);
    this.row('Environment', this.environment);
    this.row('GPUs', this.gpus, '0 runs on CPU');
    this.row('Datasets', this.datasets);
    this.row('Parameters', this.params, 'from the notebook\'s "parameters" cell');
    this.row('Max runtime', this.maxRuntime);
    this.row('Message', this.message);
    this.node.appendChild(this.error);
    this.environment.addEventListener('change', () => this.syncGpu());
  }

  private gpuCapable = new Map<string, boolean | undefined>();

  setDefaults(defaults: IDefaults): void {
    for (const env of this.setEnvironments(defaults)) {
      this.gpuCapable.set(env.name, env.gpu);
    }
    this.datasets.value = formatDatasets(defaults.datasets);
    this.params.value = formatParams(defaults.params);
    this.syncGpu();
  }

  focusField(): void {
    this.environment.focus();
  }

  /** An environment that says it has no GPU build runs on CPU only. */
  private syncGpu(): void {
    const gpu = this.gpuCapable.get(this.environment.value);
    if (gpu === false) {
      this.gpus.value = '0';
      this.gpus.disabled = true;
    } else {
      this.gpus.disabled = false;
    }
  }

  /** The request, or throws an Error whose message says which field is wrong. */
  getRequest(): IRunRequest {
    const request: IRunRequest = { path: this.path };
    if (this.environment.value) {
      request.environment = this.environment.value;
    }
    const gpus = this.gpus.value.trim() === '' ? 0 : Number(this.gpus.value);
    if (!Number.isInteger(gpus) || gpus < 0) {
      throw new Error('GPUs must be a whole number, 0 for CPU');
    }
    request.gpus = gpus;
    request.datasets = toRunDatasets(parseDatasets(this.datasets.value));
    request.params = parseParams(this.params.value);
    const maxRuntime = parseMaxRuntime(this.maxRuntime.value);
    if (maxRuntime !== undefined) {
      request.max_runtime = maxRuntime;
    }
    if (this.message.value.trim()) {
      request.message = this.message.value.trim();
    }
    return request;
  }
}

/**
 * Show the dialog for `path`; resolves with the submitted job, or null when cancelled.
 * A failed submit keeps the dialog open with the server's message.
 */
export function showRunJobDialog(api: FloydAPI, path: string): Promise<IJob | null> {
  return showFormDialog({
    api,
    form: new RunJobForm(path),
    title: 'Run as job',
    submitLabel: 'Run',
    busyLabel: 'Submitting…',
    send: request => api.run(request)
  });
}
