/**
 * What the "Run as job" and "Deploy as endpoint" dialogs share: the form's frame (path, labelled
 * rows, environment select, inline error) and the modal around it (title, Cancel and submit
 * buttons, Escape, defaults loading, and a submit that keeps the dialog open with the server's
 * message when it fails). A modal of our own rather than apputils' Dialog for that last reason.
 */
import { Widget } from '@lumino/widgets';

import { FloydAPI } from './handler';
import { IDefaults, IEnvironment } from './types';

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

/** A form for `path` that builds a request of type `R`. */
export abstract class FloydForm<R> extends Widget {
  readonly environment = el('select', { name: 'environment' });
  readonly error = el('div', { class: 'floyd-RunJob-error', role: 'alert' });

  constructor(readonly path: string) {
    super();
    this.addClass('floyd-RunJob-form');
    this.node.appendChild(el('div', { class: 'floyd-RunJob-path' }, path));
  }

  /** A labelled row for `input`, appended to the form. */
  protected row(label: string, input: HTMLElement, hint?: string): HTMLElement {
    const wrap = el('label', { class: 'floyd-RunJob-row' });
    wrap.appendChild(el('span', { class: 'floyd-RunJob-label' }, label));
    wrap.appendChild(input);
    if (hint) {
      wrap.appendChild(el('span', { class: 'floyd-RunJob-hint' }, hint));
    }
    this.node.appendChild(wrap);
    return wrap;
  }

  /** Fills the environment select from the defaults; returns the environments it offers. */
  protected setEnvironments(defaults: IDefaults): IEnvironment[] {
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
    return envs;
  }

  abstract setDefaults(defaults: IDefaults): void;

  /** The request, or throws an Error whose message says which field is wrong. */
  abstract getRequest(): R;

  /** Where the cursor goes once the defaults are in. */
  abstract focusField(): void;

  setError(message: string): void {
    this.error.textContent = message;
    this.error.style.display = message ? 'block' : 'none';
  }
}

/** The open dialog, as the `sent` callback sees it. */
export interface IFormDialog {
  readonly box: HTMLElement;
  readonly buttons: HTMLElement;
  readonly cancel: HTMLButtonElement;
  readonly submit: HTMLButtonElement;
  /** Whether the dialog went away (Cancel, Escape or `close`). */
  readonly closed: boolean;
  close(): void;
}

export interface IFormDialogOptions<R, T> {
  api: FloydAPI;
  form: FloydForm<R>;
  title: string;
  /** Added to the dialog box's `floyd-RunJob-dialog` class. */
  dialogClass?: string;
  /** The submit button's label, and its label while the request is on its way. */
  submitLabel: string;
  busyLabel: string;
  /** Sends the form's request; a rejection is shown in the form. */
  send(request: R): Promise<T>;
  /** What happens once `send` answered (it may find the dialog closed); by default it closes. */
  sent?(answer: T, dialog: IFormDialog): void;
}

/**
 * Show `form` in a modal; resolves, once the dialog closes, with the last answer `send` gave
 * (null when nothing was sent). A failed submit keeps the dialog open with the server's message.
 */
export function showFormDialog<R, T>(options: IFormDialogOptions<R, T>): Promise<T | null> {
  const { api, form } = options;
  return new Promise<T | null>(resolve => {
    const overlay = el('div', { class: 'floyd-RunJob-overlay' });
    const boxClass = options.dialogClass ? `floyd-RunJob-dialog ${options.dialogClass}` : 'floyd-RunJob-dialog';
    const box = el('div', { class: boxClass, role: 'dialog', 'aria-modal': 'true' });
    const title = el('div', { class: 'floyd-RunJob-title' }, options.title);
    const buttons = el('div', { class: 'floyd-RunJob-buttons' });
    const cancel = el('button', { class: 'jp-Dialog-button jp-mod-reject jp-mod-styled', type: 'button' }, 'Cancel');
    const submit = el(
      'button',
      { class: 'jp-Dialog-button jp-mod-accept jp-mod-styled', type: 'button' },
      options.submitLabel
    );
    buttons.append(cancel, submit);
    box.append(title);
    overlay.appendChild(box);
    document.body.appendChild(overlay);
    Widget.attach(form, box);
    box.appendChild(buttons);
    form.setError('');

    let answer: T | null = null;
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
      resolve(answer);
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

    const dialog: IFormDialog = {
      box,
      buttons,
      cancel,
      submit,
      get closed() {
        return closed;
      },
      close
    };

    submit.disabled = true;
    api
      .defaults(form.path)
      .then(defaults => form.setDefaults(defaults))
      .catch((error: Error) => form.setError(`Could not load defaults: ${error.message}`))
      .finally(() => {
        submit.disabled = false;
        form.focusField();
      });

    submit.addEventListener('click', async () => {
      let request: R;
      try {
        request = form.getRequest();
      } catch (error) {
        form.setError((error as Error).message);
        return;
      }
      form.setError('');
      submit.disabled = true;
      submit.textContent = options.busyLabel;
      try {
        answer = await options.send(request);
      } catch (error) {
        form.setError((error as Error).message);
        submit.disabled = false;
        submit.textContent = options.submitLabel;
        return;
      }
      if (options.sent) {
        options.sent(answer, dialog);
      } else {
        close();
      }
    });
  });
}
