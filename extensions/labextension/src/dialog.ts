/**
 * The "Run as job" dialog. A small modal of our own rather than apputils' Dialog, because a
 * failed submit must keep the dialog open with the bridge's message shown inline.
 */
import { Widget } from '@lumino/widgets';

import { FloydAPI } from './handler';
import {
  formatDatasets,
  formatParams,
  parseDatasets,
  parseMaxRuntime,
  parseParams,
  toRunDatasets
} from './format';
import { IDefaults, IJob, IRunRequest } from './types';

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: { [name: string]: string } = {},
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    node.setAttribute(k, v);
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** The form: fields prefilled from `GET floyd/api/defaults?path=`. */
export class RunJobForm extends Widget {
  readonly environment = el('select', { name: 'environment' });
  readonly gpus = el('input', { name: 'gpus', type: 'number', min: '0', max: '16', step: '1', value: '0' });
  readonly datasets = el('textarea', {
    name: 'datasets',
    rows: '3',
    placeholder: 'one per line: owner/dataset:version[:mount] or 12/output[:mount]'
  });
  readonly params = el('textarea', { name: 'params', rows: '4', placeholder: 'one per line: name = value' });
  readonly maxRuntime = el('input', { name: 'max_runtime', type: 'text', placeholder: 'minutes, or like 2h30m (empty: no limit)' });
  readonly message = el('input', { name: 'message', type: 'text', placeholder: 'what this run is for' });
  readonly error = el('div', { class: 'floyd-RunJob-error', role: 'alert' });

  constructor(readonly path: string) {
    super();
    this.addClass('floyd-RunJob-form');
    const form = this.node;
    form.appendChild(el('div', { class: 'floyd-RunJob-path' }, path));
    const row = (label: string, input: HTMLElement, hint?: string) => {
      const wrap = el('label', { class: 'floyd-RunJob-row' });
      wrap.appendChild(el('span', { class: 'floyd-RunJob-label' }, label));
      wrap.appendChild(input);
      if (hint) {
        wrap.appendChild(el('span', { class: 'floyd-RunJob-hint' }, hint));
      }
      form.appendChild(wrap);
    };
    row('Environment', this.environment);
    row('GPUs', this.gpus, '0 runs on CPU');
    row('Datasets', this.datasets);
    row('Parameters', this.params, 'from the notebook\'s "parameters" cell');
    row('Max runtime', this.maxRuntime);
    row('Message', this.message);
    form.appendChild(this.error);
    this.environment.addEventListener('change', () => this.syncGpu());
  }

  private gpuCapable = new Map<string, boolean | undefined>();

  setDefaults(defaults: IDefaults): void {
    this.environment.textContent = '';
    const envs = (defaults.environments ?? []).filter(env => env && env.name);
    if (defaults.environment && !envs.some(env => env.name === defaults.environment)) {
      envs.unshift({ name: defaults.environment, description: '' });
    }
    for (const env of envs) {
      const option = el('option', { value: env.name }, env.description ? `${env.name} — ${env.description}` : env.name);
      this.environment.appendChild(option);
      this.gpuCapable.set(env.name, env.gpu);
    }
    if (defaults.environment) {
      this.environment.value = defaults.environment;
    }
    this.datasets.value = formatDatasets(defaults.datasets);
    this.params.value = formatParams(defaults.params);
    this.syncGpu();
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

  setError(message: string): void {
    this.error.textContent = message;
    this.error.style.display = message ? 'block' : 'none';
  }
}

/**
 * Show the dialog for `path`; resolves with the submitted job, or null when cancelled.
 * A failed submit keeps the dialog open with the server's message.
 */
export function showRunJobDialog(api: FloydAPI, path: string): Promise<IJob | null> {
  return new Promise<IJob | null>(resolve => {
    const form = new RunJobForm(path);
    const overlay = el('div', { class: 'floyd-RunJob-overlay' });
    const box = el('div', { class: 'floyd-RunJob-dialog', role: 'dialog', 'aria-modal': 'true' });
    const title = el('div', { class: 'floyd-RunJob-title' }, 'Run as job');
    const buttons = el('div', { class: 'floyd-RunJob-buttons' });
    const cancel = el('button', { class: 'jp-Dialog-button jp-mod-reject jp-mod-styled', type: 'button' }, 'Cancel');
    const submit = el('button', { class: 'jp-Dialog-button jp-mod-accept jp-mod-styled', type: 'button' }, 'Run');
    buttons.append(cancel, submit);
    box.append(title);
    overlay.appendChild(box);
    document.body.appendChild(overlay);
    Widget.attach(form, box);
    box.appendChild(buttons);
    form.setError('');

    let done = false;
    const finish = (job: IJob | null) => {
      if (done) {
        return;
      }
      done = true;
      document.removeEventListener('keydown', onKey, true);
      Widget.detach(form);
      form.dispose();
      overlay.remove();
      resolve(job);
    };
    const onKey = (event: KeyboardEvent) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        finish(null);
      }
    };
    document.addEventListener('keydown', onKey, true);
    cancel.addEventListener('click', () => finish(null));

    submit.disabled = true;
    api
      .defaults(path)
      .then(defaults => form.setDefaults(defaults))
      .catch((error: Error) => form.setError(`Could not load defaults: ${error.message}`))
      .finally(() => {
        submit.disabled = false;
        form.environment.focus();
      });

    submit.addEventListener('click', async () => {
      let request: IRunRequest;
      try {
        request = form.getRequest();
      } catch (error) {
        form.setError((error as Error).message);
        return;
      }
      form.setError('');
      submit.disabled = true;
      submit.textContent = 'Submitting…';
      try {
        finish(await api.run(request));
      } catch (error) {
        form.setError((error as Error).message);
      } finally {
        submit.disabled = false;
        submit.textContent = 'Run';
      }
    });
  });
}
