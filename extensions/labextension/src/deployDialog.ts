/**
 * The "Deploy as endpoint" dialog: a form (name, environment, replicas, public, datasets,
 * message), then, in the same modal, the version's live status until it is ready (URL and a curl
 * line) or failed (reason and the end of its log). Closing it while the version deploys leaves the
 * polling running and reports the outcome as a notification.
 */
import { Clipboard, Notification } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { IDeployStatus, endpointSlug, deployRequest, pollVersion } from './deploy';
import { el } from './dialog';
import { FloydAPI } from './handler';
import { IDefaults, IDeployRequest, IDeployResult } from './types';

/** The form: prefilled from the name of the file and `GET floyd/api/defaults`. */
export class DeployForm extends Widget {
  readonly name = el('input', { name: 'name', type: 'text', spellcheck: 'false' });
  readonly environment = el('select', { name: 'environment' });
  readonly replicas = el('input', { name: 'replicas', type: 'number', min: '1', max: '8', step: '1', value: '1' });
  readonly isPublic = el('input', { name: 'public', type: 'checkbox' });
  readonly datasets = el('textarea', {
    name: 'datasets',
    rows: '2',
    placeholder: 'one per line: owner/dataset:version[:mount] or 12/output[:mount]'
  });
  readonly message = el('input', { name: 'message', type: 'text', placeholder: 'what this version is' });
  readonly error = el('div', { class: 'floyd-RunJob-error', role: 'alert' });

  constructor(readonly path: string) {
    super();
    this.addClass('floyd-RunJob-form');
    this.addClass('floyd-Deploy-form');
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
    this.name.value = endpointSlug(path);
    row('Endpoint name', this.name, 'a new version if the endpoint exists');
    row('Environment', this.environment);
    row('Replicas', this.replicas);
    row('Public', this.isPublic, 'callers need no API key');
    row('Datasets', this.datasets, 'mounted read-only at /floyd/input/MOUNT');
    row('Message', this.message);
    form.appendChild(this.error);
  }

  setDefaults(defaults: IDefaults): void {
    this.environment.textContent = '';
    const envs = (defaults.environments ?? []).filter(env => env && env.name);
    if (defaults.environment && !envs.some(env => env.name === defaults.environment)) {
      envs.unshift({ name: defaults.environment, description: '' });
    }
    for (const env of envs) {
      const label = env.description ? `${env.name} — ${env.description}` : env.name;
      this.environment.appendChild(el('option', { value: env.name }, label));
    }
    if (defaults.environment) {
      this.environment.value = defaults.environment;
    }
  }

  /** The request, or throws an Error whose message says which field is wrong. */
  getRequest(): IDeployRequest {
    return deployRequest(this.path, {
      name: this.name.value,
      environment: this.environment.value,
      replicas: this.replicas.value,
      public: this.isPublic.checked,
      datasets: this.datasets.value,
      message: this.message.value
    });
  }

  setError(message: string): void {
    this.error.textContent = message;
    this.error.style.display = message ? 'block' : 'none';
  }
}

/** The status view: replaced on each reading. */
export function renderStatus(node: HTMLElement, status: IDeployStatus): void {
  node.textContent = '';
  node.className = `floyd-Deploy-status floyd-Deploy-${status.phase}`;
  node.appendChild(el('div', { class: 'floyd-Deploy-statusTitle' }, status.title));
  node.appendChild(el('div', { class: 'floyd-Deploy-statusDetail' }, status.detail));
  const copyable = (label: string, text: string) => {
    const row = el('div', { class: 'floyd-Deploy-copyRow' });
    row.appendChild(el('span', { class: 'floyd-RunJob-label' }, label));
    row.appendChild(el('code', { class: 'floyd-Deploy-code' }, text));
    const copy = el('button', { class: 'jp-mod-styled floyd-Deploy-copy', type: 'button', title: 'Copy' }, 'Copy');
    copy.addEventListener('click', () => Clipboard.copyToSystem(text));
    row.appendChild(copy);
    node.appendChild(row);
  };
  if (status.url) {
    copyable('URL', status.url);
  }
  if (status.versionUrl) {
    copyable('This version', status.versionUrl);
  }
  if (status.curl) {
    copyable('Try it', status.curl);
  }
  if (status.keyHint) {
    node.appendChild(el('div', { class: 'floyd-RunJob-hint' }, status.keyHint));
  }
  if (status.logTail.length) {
    node.appendChild(el('div', { class: 'floyd-RunJob-label' }, 'End of the log'));
    node.appendChild(el('pre', { class: 'floyd-Deploy-log' }, status.logTail.join('\n')));
  }
}

function notify(status: IDeployStatus): void {
  if (status.phase === 'ready') {
    Notification.success(`${status.title}: ${status.url}`, { autoClose: false });
  } else if (status.phase === 'failed') {
    Notification.error(`${status.title}: ${status.detail}`, { autoClose: false });
  }
}

/**
 * Show the dialog for `path`; resolves with the deploy's answer once the dialog closes (null when
 * nothing was deployed). A refused deploy keeps the form open with the server's message.
 */
export function showDeployDialog(api: FloydAPI, path: string): Promise<IDeployResult | null> {
  return new Promise<IDeployResult | null>(resolve => {
    const form = new DeployForm(path);
    const overlay = el('div', { class: 'floyd-RunJob-overlay' });
    const box = el('div', { class: 'floyd-RunJob-dialog floyd-Deploy-dialog', role: 'dialog', 'aria-modal': 'true' });
    const title = el('div', { class: 'floyd-RunJob-title' }, 'Deploy as endpoint');
    const status = el('div', { class: 'floyd-Deploy-status', 'aria-live': 'polite' });
    const buttons = el('div', { class: 'floyd-RunJob-buttons' });
    const cancel = el('button', { class: 'jp-Dialog-button jp-mod-reject jp-mod-styled', type: 'button' }, 'Cancel');
    const submit = el('button', { class: 'jp-Dialog-button jp-mod-accept jp-mod-styled', type: 'button' }, 'Deploy');
    buttons.append(cancel, submit);
    box.append(title);
    overlay.appendChild(box);
    document.body.appendChild(overlay);
    Widget.attach(form, box);
    box.appendChild(buttons);
    form.setError('');

    let result: IDeployResult | null = null;
    let closed = false;
    const close = () => {
      if (closed) {
        return;
      }
      closed = true;
      document.removeEventListener('keydown', onKey, true);
      if (!form.isDisposed) {
        Widget.detach(form);
        form.dispose();
      }
      overlay.remove();
      resolve(result);
    };
    const onKey = (event: KeyboardEvent) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        close();
      }
    };
    document.addEventListener('keydown', onKey, true);
    cancel.addEventListener('click', close);

    submit.disabled = true;
    api
      .defaults(path)
      .then(defaults => form.setDefaults(defaults))
      .catch((error: Error) => form.setError(`Could not load defaults: ${error.message}`))
      .finally(() => {
        submit.disabled = false;
        form.name.focus();
        form.name.select();
      });

    const follow = (deployed: IDeployResult) => {
      Widget.detach(form);
      form.dispose();
      submit.remove();
      cancel.textContent = 'Close';
      box.insertBefore(status, buttons);
      pollVersion(api, deployed, s => {
        if (!closed) {
          renderStatus(status, s);
        }
      })
        .then(final => {
          if (closed) {
            notify(final); // the dialog went away while it deployed
          }
        })
        .catch((error: Error) => {
          const message = `Lost track of ${deployed.endpoint} v${deployed.number}: ${error.message}`;
          if (closed) {
            Notification.error(message, { autoClose: false });
          } else {
            status.appendChild(el('div', { class: 'floyd-RunJob-error', role: 'alert' }, message));
          }
        });
    };

    submit.addEventListener('click', async () => {
      let request: IDeployRequest;
      try {
        request = form.getRequest();
      } catch (error) {
        form.setError((error as Error).message);
        return;
      }
      form.setError('');
      submit.disabled = true;
      submit.textContent = 'Uploading…';
      try {
        result = await api.deploy(request);
      } catch (error) {
        form.setError((error as Error).message);
        submit.disabled = false;
        submit.textContent = 'Deploy';
        return;
      }
      if (closed) {
        Notification.info(`Deploying ${result.endpoint} v${result.number}…`, { autoClose: 5000 });
        pollVersion(api, result, () => undefined)
          .then(notify)
          .catch(() => undefined);
        return;
      }
      follow(result);
    });
  });
}
