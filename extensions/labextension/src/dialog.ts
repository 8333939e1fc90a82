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
import { IDefaults, IJob, IRunRequest, ISchedule } from './types';

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
  /** "Run now" or "On a schedule" (what jupyter-scheduler offers), with the schedule's fields. */
  readonly when = el('select', { name: 'when' });
  readonly scheduleName = el('input', { name: 'schedule_name', type: 'text', placeholder: 'e.g. nightly' });
  readonly cron = el('input', { name: 'cron', type: 'text', placeholder: 'minute hour day month weekday, e.g. 0 3 * * *' });
  readonly timezone = el('input', { name: 'timezone', type: 'text', value: 'UTC' });
  private scheduleRows: HTMLElement[] = [];

  constructor(path: string) {
    super(path);
    this.row('Environment', this.environment);
    this.row('GPUs', this.gpus, '0 runs on CPU');
    this.row('Datasets', this.datasets);
    this.row('Parameters', this.params, 'from the notebook\'s "parameters" cell');
    this.row('Max runtime', this.maxRuntime);
    this.row('Message', this.message);
    this.when.append(el('option', { value: 'now' }, 'Run now'), el('option', { value: 'schedule' }, 'On a schedule'));
    this.row('When', this.when);
    this.scheduleRows = [
      this.row('Schedule name', this.scheduleName),
      this.row('Cron', this.cron, 'runs the code as it is now, each time'),
      this.row('Time zone', this.timezone)
    ];
    this.when.addEventListener('change', () => this.syncWhen());
    this.syncWhen();
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

  /** Whether the form stores a schedule instead of running now. */
  get scheduled(): boolean {
    return this.when.value === 'schedule';
  }

  private syncWhen(): void {
    for (const row of this.scheduleRows) {
      row.style.display = this.scheduled ? '' : 'none';
    }
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
    if (this.scheduled) {
      if (!this.scheduleName.value.trim() || !this.cron.value.trim()) {
        throw new Error('A schedule needs a name and a cron, e.g. nightly and 0 3 * * *');
      }
      request.schedule = {
        name: this.scheduleName.value.trim(),
        cron: this.cron.value.trim(),
        timezone: this.timezone.value.trim() || 'UTC'
      };
    }
    return request;
  }
}

/**
 * Show the dialog for `path`; resolves with the submitted job, the stored schedule, or null when
 * cancelled. A failed submit keeps the dialog open with the server's message; a stored schedule
 * is confirmed in the dialog (its next run), which then only closes.
 */
export function showRunJobDialog(api: FloydAPI, path: string): Promise<IJob | ISchedule | null> {
  return showFormDialog<IRunRequest, IJob | ISchedule>({
    api,
    form: new RunJobForm(path),
    title: 'Run as job',
    submitLabel: 'Run',
    busyLabel: 'Submitting…',
    send: request => (request.schedule ? api.schedule(request) : api.run(request)),
    sent: (answer, dialog) => {
      if (!('cron' in answer)) {
        dialog.close();
        return;
      }
      const done = el(
        'div',
        { class: 'floyd-RunJob-scheduled', role: 'status' },
        `Scheduled ${answer.owner}/${answer.name} (${answer.cron}, ${answer.timezone}): next run ${answer.next_run_at ?? '-'}`
      );
      dialog.box.insertBefore(done, dialog.buttons);
      dialog.submit.style.display = 'none';
      dialog.cancel.textContent = 'Close';
    }
  });
}
