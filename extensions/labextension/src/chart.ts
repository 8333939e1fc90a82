/** A minimal SVG line chart of metric series (no charting dependency). */
import { formatNumber } from './format';
import { IMetricPoint } from './types';

export interface IChartBox {
  width: number;
  height: number;
  pad: number;
}

/** The SVG path `d` of one series scaled into the box; `''` for no finite points. A single
 * point or a flat series is drawn at the vertical middle. */
export function buildPath(points: IMetricPoint[], box: IChartBox): string {
  const pts = points.filter(p => isFinite(p.step) && isFinite(p.value));
  if (pts.length === 0) {
    return '';
  }
  const steps = pts.map(p => p.step);
  const values = pts.map(p => p.value);
  const [x0, x1] = [Math.min(...steps), Math.max(...steps)];
  const [y0, y1] = [Math.min(...values), Math.max(...values)];
  const w = box.width - 2 * box.pad;
  const h = box.height - 2 * box.pad;
  const sx = (s: number) => box.pad + (x1 === x0 ? w / 2 : ((s - x0) / (x1 - x0)) * w);
  const sy = (v: number) => box.pad + (y1 === y0 ? h / 2 : (1 - (v - y0) / (y1 - y0)) * h);
  return pts
    .map((p, i) => `${i === 0 ? 'M' : 'L'}${round(sx(p.step))},${round(sy(p.value))}`)
    .join(' ');
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

const COLORS = ['#1976d2', '#e65100', '#2e7d32', '#6a1b9a', '#c62828', '#00838f'];

/** Render every series (one colour each, legend with last value) into a fresh <svg>. */
export function renderChart(
  doc: Document,
  series: { [name: string]: IMetricPoint[] },
  box: IChartBox = { width: 260, height: 120, pad: 6 }
): SVGSVGElement {
  const svg = doc.createElementNS(SVG_NS, 'svg') as SVGSVGElement;
  // scales with the panel's width, keeping its proportions
  const height = box.height + 16 * Object.keys(series).length;
  svg.setAttribute('viewBox', `0 0 ${box.width} ${height}`);
  svg.setAttribute('width', '100%');
  svg.setAttribute('class', 'floyd-MetricsChart');
  const frame = doc.createElementNS(SVG_NS, 'rect');
  frame.setAttribute('x', '0.5');
  frame.setAttribute('y', '0.5');
  frame.setAttribute('width', String(box.width - 1));
  frame.setAttribute('height', String(box.height - 1));
  frame.setAttribute('class', 'floyd-MetricsChart-frame');
  svg.appendChild(frame);
  Object.keys(series)
    .sort()
    .forEach((name, i) => {
      const color = COLORS[i % COLORS.length];
      const path = doc.createElementNS(SVG_NS, 'path');
      path.setAttribute('d', buildPath(series[name], box));
      path.setAttribute('fill', 'none');
      path.setAttribute('stroke', color);
      path.setAttribute('stroke-width', '1.5');
      path.setAttribute('data-metric', name);
      svg.appendChild(path);
      const label = doc.createElementNS(SVG_NS, 'text');
      const last = series[name][series[name].length - 1];
      label.setAttribute('x', '4');
      label.setAttribute('y', String(box.height + 12 + 16 * i));
      label.setAttribute('fill', color);
      label.setAttribute('font-size', '11');
      label.textContent = last ? `${name}: ${formatNumber(last.value)} (step ${last.step})` : name;
      svg.appendChild(label);
    });
  return svg;
}
