// A small inline-SVG line chart, shared by the job page (metric series) and the endpoint page
// (requests and latency). No library. Sets window.Floyd.plot.
"use strict";

(function () {
  const SVGNS = "http://www.w3.org/2000/svg";
  const W = 360, H = 150, PAD = { l: 46, r: 10, t: 10, b: 22 };
  const COLORS = ["#2f6fde", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#1098ad"];
  const num = (v) => Number(v.toPrecision(4)).toString();
  function niceCeil(v) {
    if (!(v > 0)) return v;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    return [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map((m) => m * p).find((n) => n >= v) || v;
  }

  function svgEl(tag, attrs, text) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // opts: {name, series: [{name, color, dash, points: [[x, y], …]}], xFmt, yFmt, x0, x1, y0, nice}
  // A point whose y is null is a gap: each run of points between gaps is one polyline, tagged
  // with its series' name (data-series). x0/x1/y0 fix the range's ends; else the data sets them;
  // nice rounds the top up to a round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten).
  function plot(opts) {
    const series = opts.series.map((s) => ({ ...s, points: s.points.filter((p) => p[0] !== undefined) }));
    const xs = series.flatMap((s) => s.points.map((p) => p[0]));
    const ys = series.flatMap((s) => s.points.filter((p) => p[1] !== null).map((p) => p[1]));
    let x0 = opts.x0 ?? Math.min(...xs), x1 = opts.x1 ?? Math.max(...xs);
    let y0 = opts.y0 ?? Math.min(...ys), y1 = Math.max(...ys, opts.y0 ?? -Infinity);
    if (!Number.isFinite(x0) || !Number.isFinite(x1)) { x0 = 0; x1 = 1; }
    if (!Number.isFinite(y0) || !Number.isFinite(y1)) { y0 = 0; y1 = 1; }
    if (x0 === x1) { x0 -= 1; x1 += 1; }
    if (y0 === y1) { const d = Math.abs(y0) * 0.1 || 1; if (opts.y0 === undefined) y0 -= d; y1 += d; }
    else if (opts.nice) y1 = niceCeil(y0 + (y1 - y0) * 1.05);
    const xFmt = opts.xFmt || num, yFmt = opts.yFmt || num;
    const sx = (x) => PAD.l + ((x - x0) / (x1 - x0)) * (W - PAD.l - PAD.r);
    const sy = (y) => H - PAD.b - ((y - y0) / (y1 - y0)) * (H - PAD.t - PAD.b);

    const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", "data-series": opts.name, role: "img" });
    svg.appendChild(svgEl("title", {}, opts.name));
    svg.appendChild(svgEl("rect", { x: PAD.l, y: PAD.t, width: W - PAD.l - PAD.r, height: H - PAD.t - PAD.b,
      class: "plot-area" }));
    for (const [y, v] of [[sy(y1), y1], [sy(y0), y0]]) {
      svg.appendChild(svgEl("line", { x1: PAD.l, x2: W - PAD.r, y1: y, y2: y, class: "grid" }));
      svg.appendChild(svgEl("text", { x: PAD.l - 4, y: y + 4, "text-anchor": "end", class: "tick" }, yFmt(v)));
    }
    svg.appendChild(svgEl("text", { x: PAD.l, y: H - 6, class: "tick" }, xFmt(x0)));
    svg.appendChild(svgEl("text", { x: W - PAD.r, y: H - 6, "text-anchor": "end", class: "tick" }, xFmt(x1)));

    series.forEach((s, i) => {
      const color = s.color || COLORS[i % COLORS.length];
      const runs = [[]];
      for (const [x, y] of s.points) {
        if (y === null) { if (runs[runs.length - 1].length) runs.push([]); continue; }
        runs[runs.length - 1].push(sx(x).toFixed(1) + "," + sy(y).toFixed(1));
      }
      for (const run of runs.filter((r) => r.length)) {
        const attrs = { points: run.join(" "), fill: "none", stroke: color, "stroke-width": 2, "data-series": s.name };
        if (s.dash) attrs["stroke-dasharray"] = s.dash;
        svg.appendChild(svgEl("polyline", attrs));
      }
      const last = s.points.filter((p) => p[1] !== null).pop();
      if (last) svg.appendChild(svgEl("circle", { cx: sx(last[0]), cy: sy(last[1]), r: 3, fill: color }));
    });
    return svg;
  }

  window.Floyd = Object.assign(window.Floyd || {}, { plot, COLORS });
})();
