/**
 * The "Deploy as endpoint" dialog: a form (name, environment, replicas, public, datasets,
 * message), then, in the same modal, the version's live status until it is ready (URL and a curl
 * line) or failed (reason and the end of its log). Closing it while the version deploys leaves the
 * polling running and reports the outcome as a notification.
 */
import { Clipboard, Notification } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { IDeployStatus, endpointSlug, deployRequest, pollVersion } from './deploy';
import { FloydForm, IFormDialog, el, showFormDialog } from './formDialog';
import { FloydAPI } from './handler';
import { IDefaults, IDeployRequest, IDeployResult } from './types';

/** The form: prefilled from the name of the file and `GET floyd/api/defaults`. */
export class DeployForm extends FloydForm<IDeployRequest> {
  readonly name = el('input', { name: 'name', type: 'text', spellcheck: 'false' });
  readonly replicas = el('input', { name: 'replicas', type: 'number', min: '1', max: '8', step: '1', value: '1' });
  readonly isPublic = el('input', { name: 'public', type: 'checkbox' });
  readonly datasets = el('textarea', {
    name: 'datasets',
    rows: '2',
    placeholder: 'one per line: owner/dataset:version[:mount] or 12/output[:mount]'
  });
  readonly message = el('input', { name: 'message', type: 'text', placeholder: 'what this version is' });

  constructor(path: string) {
    super(path);
    this.addClass('floyd-Deploy-form');
    this.name.value = endpointSlug(path);
    this.row('Endpoint name', this.name, 'a new version if the endpoint exists');
    this.row('Environment', this.environment);
    this.row('Replicas', this.replicas);
    this.row('Public', this.isPublic, 'callers need no API key');
    this.row('Datasets', this.datasets, 'mounted read-only at /floyd/input/MOUNT');
    this.row('Message', this.message);
    this.node.appendChild(this.error);
  }

  setDefaults(defaults: IDefaults): void {
    this.setEnvironments(defaults);
  }

  focusField(): void {
    this.name.focus();
    this.name.select();
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
  const form = new DeployForm(path);
  const status = el('div', { class: 'floyd-Deploy-status', 'aria-live': 'polite' });

  /** The form gives way to the version's live status, in the same modal. */
  const follow = (deployed: IDeployResult, dialog: IFormDialog) => {
    Widget.detach(form);
    form.dispose();
    dialog.submit.remove();
    dialog.cancel.textContent = 'Close';
    dialog.box.insertBefore(status, dialog.buttons);
    pollVersion(api, deployed, s => {
      if (!dialog.closed) {
        renderStatus(status, s);
      }
    })
      .then(final => {
        if (dialog.closed) {
          notify(final); // the dialog went away while it deployed
        }
      })
      .catch((error: Error) => {
        const message = `Lost track of ${deployed.endpoint} v${deployed.number}: ${error.message}`;
        if (dialog.closed) {
          Notification.error(message, { autoClose: false });
        } else {
          status.appendChild(el('div', { class: 'floyd-RunJob-error', role: 'alert' }, message));
        }
      });
  };

  return showFormDialog({
    api,
    form,
    title: 'Deploy as endpoint',
    dialogClass: 'floyd-Deploy-dialog',
    submitLabel: 'Deploy',
    busyLabel: 'Uploading…',
    send: request => api.deploy(request),
    sent: (deployed, dialog) => {
      if (dialog.closed) {
        Notification.info(`Deploying ${deployed.endpoint} v${deployed.number}…`, { autoClose: 5000 });
        pollVersion(api, deployed, () => undefined)
          .then(notify)
          .catch(() => undefined);
        return;
      }
      follow(deployed, dialog);
    }
  });
}
