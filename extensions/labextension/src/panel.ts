/** The "Jobs" side panel: the project's jobs, live, and the selected job's log tail and chart. */
import { Widget } from '@lumino/widgets';

import { renderChart } from './chart';
import {
  executedNotebookPath,
  formatDuration,
  formatMetrics,
  gpuLabel,
  isTerminal,
  outputPath,
  stateClass
} from './format';
import { FloydAPI } from './handler';
import { IJob } from './types';

export const REFRESH_MS = 2000;
/** Lines kept in the log tail. */
export const LOG_LINES = 500;

export interface IJobsPanelOptions {
  api: FloydAPI;
  /** Open a folder in the file browser (`filebrowser:open-path`). */
  openPath: (path: string) => Promise<unknown>;
  /** Open a file as a document (`docmanager:open`). */
  openFile: (path: string) => Promise<unknown>;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls = '', text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (cls) {
    node.className = cls;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

export class JobsPanel extends Widget {
  private readonly list = el('ul', 'floyd-JobsPanel-list');
  private readonly status = el('div', 'floyd-JobsPanel-status');
  private readonly detail = el('div', 'floyd-JobsPanel-detail');
  private readonly detailHeader = el('div', 'floyd-JobDetail-header');
  private readonly detailError = el('div', 'floyd-JobDetail-error');
  private readonly chart = el('div', 'floyd-JobDetail-chart');
  private readonly log = el('pre', 'floyd-JobDetail-log');
  private jobs: IJob[] = [];
  private selected: number | null = null;
  private source: EventSource | null = null;
  private logLines: string[] = [];
  private timer: number | null = null;
  private busy = false;

  constructor(private readonly options: IJobsPanelOptions) {
    super();
    this.id = 'floyd-jobs-panel';
    this.addClass('floyd-JobsPanel');
    this.title.caption = 'Floyd jobs';
    const header = el('div', 'floyd-JobsPanel-header');
    header.appendChild(el('span', 'floyd-JobsPanel-title', 'Jobs'));
    const refresh = el('button', 'jp-Button jp-mod-minimal floyd-JobsPanel-refresh', '⟳');
    refresh.title = 'Refresh';
    refresh.addEventListener('click', () => void this.refresh());
    header.appendChild(refresh);
    this.node.append(header, this.status, this.list, this.detail);
    this.detail.append(this.detailHeader, this.detailError, this.chart, this.log);
    this.detail.style.display = 'none';
  }

  protected onAfterAttach(): void {
    this.timer = window.setInterval(() => {
      if (this.isVisible) {
        void this.refresh();
      }
    }, REFRESH_MS);
    void this.refresh();
  }

  protected onBeforeDetach(): void {
    if (this.timer !== null) {
      window.clearInterval(this.timer);
      this.timer = null;
    }
  }

  protected onAfterShow(): void {
    void this.refresh();
  }

  dispose(): void {
    this.closeLog();
    if (this.timer !== null) {
      window.clearInterval(this.timer);
      this.timer = null;
    }
    super.dispose();
  }

  /** Reload the list (and the selected job's chart); overlapping calls are dropped. */
  async refresh(): Promise<void> {
    if (this.busy || this.isDisposed) {
      return;
    }
    this.busy = true;
    try {
      this.jobs = await this.options.api.jobs();
      this.status.textContent = this.jobs.length ? '' : 'No jobs yet: use "Run as job" on a notebook or script.';
      this.status.classList.remove('floyd-mod-error');
      this.renderList();
      const job = this.selectedJob();
      if (job) {
        this.renderDetailHeader(job);
        await this.refreshChart(job);
      }
    } catch (error) {
      this.status.textContent = (error as Error).message;
      this.status.classList.add('floyd-mod-error');
    } finally {
      this.busy = false;
    }
  }

  /** Show job `n` (called after a submit too). */
  async select(n: number): Promise<void> {
    if (this.selected !== n) {
      this.selected = n;
      this.chart.textContent = '';
      this.openLog(n);
    }
    this.detail.style.display = '';
    await this.refresh();
    if (!this.selectedJob()) {
      // not in the list yet (a new job): fetch it alone
      try {
        const job = await this.options.api.job(n);
        // a refresh may have brought it in meanwhile: never list a job twice
        this.jobs = [job, ...this.jobs.filter(j => j.number !== job.number)];
        this.renderList();
        this.renderDetailHeader(job);
      } catch (error) {
        this.detailError.textContent = (error as Error).message;
      }
    }
  }

  private selectedJob(): IJob | undefined {
    return this.jobs.find(j => j.number === this.selected);
  }

  private renderList(): void {
    this.list.textContent = '';
    for (const job of this.jobs) {
      const item = el('li', 'floyd-JobsPanel-item');
      item.dataset.job = String(job.number);
      if (job.number === this.selected) {
        item.classList.add('floyd-mod-selected');
      }
      const top = el('div', 'floyd-JobsPanel-itemTop');
      top.append(
        el('span', 'floyd-JobsPanel-number', `#${job.number}`),
        el('span', stateClass(job.state), job.state),
        el('span', 'floyd-JobsPanel-duration', formatDuration(job.duration))
      );
      const sub = el('div', 'floyd-JobsPanel-itemSub', [job.environment ?? '', gpuLabel(job), job.message ?? ''].filter(Boolean).join(' · '));
      const metrics = formatMetrics(job.latest_metrics);
      item.append(top, sub);
      if (metrics) {
        item.appendChild(el('div', 'floyd-JobsPanel-metrics', metrics));
      }
      item.addEventListener('click', () => void this.select(job.number));
      this.list.appendChild(item);
    }
  }

  private renderDetailHeader(job: IJob): void {
    this.detailHeader.textContent = '';
    const title = el('div', 'floyd-JobDetail-title');
    title.append(el('span', '', job.id), el('span', stateClass(job.state), job.state));
    const info: string[] = [formatDuration(job.duration)];
    if (job.reason) {
      info.push(job.reason);
    }
    if (job.exit_code !== null && job.exit_code !== undefined) {
      info.push(`exit ${job.exit_code}`);
    }
    const buttons = el('div', 'floyd-JobDetail-buttons');
    const stop = el('button', 'jp-Button jp-mod-styled jp-mod-warn floyd-JobDetail-stop', 'Stop');
    stop.disabled = isTerminal(job.state);
    stop.addEventListener('click', async () => {
      stop.disabled = true;
      try {
        await this.options.api.stop(job.number);
        this.detailError.textContent = '';
        await this.refresh();
      } catch (error) {
        this.detailError.textContent = (error as Error).message;
        stop.disabled = false;
      }
    });
    const open = el('button', 'jp-Button jp-mod-styled floyd-JobDetail-open', 'Open output');
    open.addEventListener('click', async () => {
      try {
        await this.options.openPath(outputPath(job));
        const notebook = executedNotebookPath(job);
        if (notebook && isTerminal(job.state)) {
          await this.options.openFile(notebook);
        }
      } catch (error) {
        this.detailError.textContent = `Cannot open ${outputPath(job)}: ${(error as Error).message}`;
      }
    });
    buttons.append(stop, open);
    this.detailHeader.append(title, el('div', 'floyd-JobDetail-info', info.join(' · ')), buttons);
  }

  private async refreshChart(job: IJob): Promise<void> {
    // a finished job's chart no longer changes once drawn
    if (isTerminal(job.state) && this.chart.dataset.final === String(job.number)) {
      return;
    }
    try {
      const metrics = await this.options.api.metrics(job.number);
      const series = metrics.series ?? {};
      this.chart.textContent = '';
      if (Object.keys(series).length) {
        this.chart.appendChild(renderChart(document, series));
      }
      this.chart.dataset.final = isTerminal(job.state) ? String(job.number) : '';
    } catch (error) {
      this.chart.textContent = `Metrics: ${(error as Error).message}`;
    }
  }

  /** Follow the log with server-sent events; same-origin GET, so the Lab cookie authenticates. */
  private openLog(n: number): void {
    this.closeLog();
    this.logLines = [];
    this.log.textContent = '';
    const source = new EventSource(this.options.api.logsUrl(n));
    this.source = source;
    // the stream starts from the job's first line, also after EventSource reconnects
    source.onopen = () => {
      this.logLines = [];
    };
    source.onmessage = (event: MessageEvent) => {
      this.appendLog(String(event.data));
    };
    source.addEventListener('end', () => {
      this.closeLog();
    });
    source.onerror = () => {
      // EventSource reconnects by itself; a finished job's stream is done for good
      const job = this.selectedJob();
      if (source.readyState === EventSource.CLOSED || (job && isTerminal(job.state))) {
        if (this.source === source) {
          this.closeLog();
        }
      }
    };
  }

  private appendLog(line: string): void {
    const stick = this.log.scrollTop + this.log.clientHeight >= this.log.scrollHeight - 4;
    this.logLines.push(line);
    if (this.logLines.length > LOG_LINES) {
      this.logLines.splice(0, this.logLines.length - LOG_LINES);
    }
    this.log.textContent = this.logLines.join('\n');
    if (stick) {
      this.log.scrollTop = this.log.scrollHeight;
    }
  }

  private closeLog(): void {
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }
}
