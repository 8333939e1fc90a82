// The compare page: every run's metric curves overlaid (one chart per metric, chart.js), and the
// runs ranked by a chosen metric, both from GET /api/v1/compare.
"use strict";

(function () {
  const { el, getJSON, fmtNumber, tensorboardButton, plot, COLORS } = window.Floyd; // common.js, chart.js

  function overlay(box, data) {
    const names = data.metrics.filter((n) => !n.startsWith("system/"));
    const figures = names.map((name) => {
      const series = data.runs.map((run, i) => {
        const pts = (run.series || {})[name] || [];
        const bySteps = pts.every((p) => p.step !== null && p.step !== undefined);
        const t0 = pts.length ? pts[0].ts : 0;
        return { name: run.id, color: COLORS[i % COLORS.length],
          points: pts.map((p) => [bySteps ? p.step : p.ts - t0, p.value]) };
      }).filter((s) => s.points.length);
      const fig = el("figure", { class: "chart-box", "data-series": name });
      const cap = el("figcaption", {}, name + " ");
      series.forEach((s) => {
        const item = el("span", { class: "legend", style: "--c: " + s.color }, s.name);
        cap.appendChild(item);
      });
      fig.appendChild(cap);
      fig.appendChild(plot({ name, series, yFmt: fmtNumber }));
      return fig;
    });
    box.replaceChildren(...figures);
  }

  async function rank(section, pages) {
    const metric = document.getElementById("rank-metric").value;
    const order = document.getElementById("rank-order").value;
    const tbody = document.querySelector("#ranking tbody");
    if (!metric) return;
    const data = await getJSON(section.dataset.api + "&rank=" + encodeURIComponent(metric) + "&order=" + order);
    tbody.replaceChildren(...data.runs.map((run, i) => {
      const tr = el("tr", { "data-job": run.id });
      const value = (run.metrics[metric] || {}).last;
      const link = el("td");
      link.appendChild(el("a", { href: pages + run.id }, run.id));
      tr.append(el("td", {}, String(i + 1)), link, el("td", {}, run.state),
        el("td", { class: "value" }, value === undefined ? "—" : fmtNumber(value)));
      return tr;
    }));
  }

  document.addEventListener("DOMContentLoaded", async () => {
    const section = document.getElementById("compare");
    if (!section) return;
    const pages = section.dataset.pages;
    for (const id of ["rank-metric", "rank-order"]) {
      document.getElementById(id).addEventListener("change", () => rank(section, pages));
    }
    rank(section, pages);
    tensorboardButton(document.getElementById("tensorboard"), section.dataset.tensorboards,
      () => JSON.parse(section.dataset.runs));
    overlay(document.getElementById("compare-charts"), await getJSON(section.dataset.api + "&series=1"));
  });
})();
