import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, showErrorMessage } from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { showDeployDialog } from './deployDialog';
import { showRunJobDialog } from './dialog';
import { FloydAPI } from './handler';
import { JobsPanel } from './panel';

export const PLUGIN_ID = 'floyd-labextension:plugin';

export namespace CommandIDs {
  export const runAsJob = 'floyd:run-as-job';
  export const runFileAsJob = 'floyd:run-file-as-job';
  export const showJobs = 'floyd:show-jobs';
  export const deployAsEndpoint = 'floyd:deploy-as-endpoint';
  export const deployFileAsEndpoint = 'floyd:deploy-file-as-endpoint';
}

const JOBS_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
  '<path class="jp-icon3" fill="#616161" d="M4 4h16v2H4zm0 5h10v2H4zm0 5h16v2H4zm0 5h10v2H4z' +
  'M17 8.5v5l4-2.5z"/></svg>';

const RUN_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
  '<path class="jp-icon3" fill="#616161" d="M3 5h11v2H3zm0 4h11v2H3zm0 4h7v2H3zm11 0v8l6-4z"/></svg>';

const DEPLOY_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
  '<path class="jp-icon3" fill="#616161" d="M12 3l-5 5h3.5v6h3V8H17zM4 15h2v4h12v-4h2v6H4z"/></svg>';

export const jobsIcon = new LabIcon({ name: 'floyd:jobs', svgstr: JOBS_SVG });
export const runJobIcon = new LabIcon({ name: 'floyd:run-job', svgstr: RUN_SVG });
export const deployIcon = new LabIcon({ name: 'floyd:deploy', svgstr: DEPLOY_SVG });

const RUNNABLE = /\.(ipynb|py)$/;

/** An action on a notebook or script: "Run as job", "Deploy as endpoint". */
interface IFileAction {
  /** The command on the current notebook (toolbar, palette). */
  notebookCommand: string;
  notebookCaption: string;
  /** The command on the file browser's selection (context menu). */
  fileCommand: string;
  fileCaption: string;
  label: string;
  icon: LabIcon;
  /** The context menu item's rank. */
  rank: number;
  /** Acts on the file at `path`, as it is on disk. */
  execute(path: string): Promise<unknown>;
}

/**
 * Registers the action's pair of commands, its file-browser context-menu items and its palette
 * item. Both commands show a failure in an error dialog titled with the label.
 */
function addFileCommands(
  app: JupyterFrontEnd,
  notebooks: INotebookTracker | null,
  browser: IDefaultFileBrowser | null,
  palette: ICommandPalette | null,
  action: IFileAction
): void {
  const act = async (path: string, prepare?: () => Promise<void>) => {
    try {
      await prepare?.();
      await action.execute(path);
    } catch (error) {
      await showErrorMessage(action.label, error as Error);
    }
  };
  const selected = () => {
    const item = browser?.selectedItems().next();
    return !item || item.done ? undefined : item.value.path;
  };

  app.commands.addCommand(action.notebookCommand, {
    label: action.label,
    caption: action.notebookCaption,
    icon: action.icon,
    isEnabled: () => !!notebooks?.currentWidget,
    execute: async args => {
      const widget = notebooks?.currentWidget;
      const path = (args.path as string) || widget?.context.path;
      if (!path) {
        return;
      }
      await act(path, async () => {
        // the action takes the files on disk: save what is being edited first
        if (widget && widget.context.path === path && widget.context.model.dirty) {
          await widget.context.save();
        }
      });
    }
  });
  app.commands.addCommand(action.fileCommand, {
    label: action.label,
    caption: action.fileCaption,
    icon: action.icon,
    isVisible: () => {
      const path = selected();
      return !!path && RUNNABLE.test(path);
    },
    execute: async () => {
      const path = selected();
      if (path) {
        await act(path);
      }
    }
  });

  // Lumino context-menu selectors take no comma lists: one item per file type
  for (const fileType of ['python', 'notebook']) {
    app.contextMenu.addItem({
      command: action.fileCommand,
      selector: `.jp-DirListing-item[data-file-type="${fileType}"]`,
      rank: action.rank
    });
  }
  if (palette) {
    palette.addItem({ command: action.notebookCommand, category: 'Floyd' });
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Run notebooks and scripts as Floyd jobs, follow them in a Jobs panel, and deploy them as endpoints.',
  autoStart: true,
  requires: [],
  optional: [INotebookTracker, IDefaultFileBrowser, ILayoutRestorer, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker | null,
    browser: IDefaultFileBrowser | null,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ) => {
    const api = new FloydAPI();
    const panel = new JobsPanel({
      api,
      openPath: path => app.commands.execute('filebrowser:open-path', { path }),
      openFile: path => app.commands.execute('docmanager:open', { path })
    });
    panel.title.icon = jobsIcon;
    app.shell.add(panel, 'left', { rank: 600 });
    if (restorer) {
      restorer.add(panel, 'floyd-jobs-panel');
    }

    addFileCommands(app, notebooks, browser, palette, {
      notebookCommand: CommandIDs.runAsJob,
      notebookCaption: 'Run this notebook as a background job (saves it first)',
      fileCommand: CommandIDs.runFileAsJob,
      fileCaption: 'Run the selected notebook or script as a background job',
      label: 'Run as job',
      icon: runJobIcon,
      rank: 3,
      execute: async path => {
        const job = await showRunJobDialog(api, path);
        if (job && 'number' in job) {
          app.shell.activateById(panel.id);
          await panel.select(job.number);
        }
      }
    });
    addFileCommands(app, notebooks, browser, palette, {
      notebookCommand: CommandIDs.deployAsEndpoint,
      notebookCaption: 'Serve this notebook as a REST endpoint (saves it first)',
      fileCommand: CommandIDs.deployFileAsEndpoint,
      fileCaption: 'Serve the selected notebook or app.py as a REST endpoint',
      label: 'Deploy as endpoint',
      icon: deployIcon,
      rank: 3.1,
      execute: path => showDeployDialog(api, path)
    });

    app.commands.addCommand(CommandIDs.showJobs, {
      label: 'Show Floyd jobs',
      execute: () => app.shell.activateById(panel.id)
    });

    if (palette) {
      palette.addItem({ command: CommandIDs.showJobs, category: 'Floyd' });
    }
  }
};

export default plugin;
