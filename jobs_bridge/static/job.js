// Floyd job pages: the live jobs table (/jobs) and one job's page (/jobs/OWNER/PROJECT/N).
// No framework and no external library: common.js (helpers, the live log) and chart.js (SVG) come first.
"use strict";

(function () {
  const ACTIVE = ["queued", "starting", "running"];
  const POLL_MS = 2000;

  const { fmtDuration, fmtWhen, fmtBytes, fmtResources, fmtNumber, el, setBadge, getJSON, xsrf, followLog,
    tensorboardButton, plot, COLORS } = window.Floyd; // common.js, chart.js

  function fmtMetric(name, v) {
    if (name === "system/memory_bytes") return "memory " + fmtBytes(v);
    if (name === "system/cpu_percent") return "cpu " + v.toFixed(0) + "%";
    return name + "=" + fmtNumber(v);
  }
  function metricOrder(a, b) {
    const sa = a.startsWith("system/"), sb = b.startsWith("system/");
    return sa === sb ? (a < b ? -1 : a > b ? 1 : 0) : (sa ? 1 : -1);
  }
  function fmtMetrics(latest) {
    const names = Object.keys(latest || {}).sort(metricOrder);
    return names.map((n) => fmtMetric(n, latest[n])).join(", ") || "—";
  }

  // -- /jobs: the table, refreshed every 2 s ------------------------------------------------
  function jobsTable(table) {
    const tbody = table.tBodies[0];
    const pages = table.dataset.pages;
    const stamp = document.getElementById("refreshed");
    const ticked = new Set();
    const compare = document.getElementById("compare");
    function tick(box) {
      if (box.checked) ticked.add(box.value); else ticked.delete(box.value);
      if (compare) compare.disabled = ticked.size < 1;
    }
    tbody.addEventListener("change", (e) => { if (e.target.classList.contains("pick")) tick(e.target); });
    for (const box of tbody.querySelectorAll("input.pick")) tick(box);
    if (compare) {
      compare.addEventListener("click", () => {
        window.location.href = compare.dataset.page + "?jobs=" + encodeURIComponent([...ticked].join(","));
      });
    }
    function row(j) {
      const tr = el("tr", { "data-job": j.id });
      const pick = el("td");
      const box = el("input", { type: "checkbox", class: "pick", value: j.id, "aria-label": "compare " + j.id });
      box.checked = ticked.has(j.id);
      pick.appendChild(box);
      tr.appendChild(pick);
      const link = el("td");
      link.appendChild(el("a", { href: pages + j.id }, j.id));
      tr.appendChild(link);
      tr.appendChild(el("td", {}, j.project));
      const st = el("td");
      st.appendChild(el("span", { class: "badge state-" + j.state }, j.state));
      tr.appendChild(st);
      tr.appendChild(el("td", {}, fmtWhen(j.created_at)));
      tr.appendChild(el("td", {}, fmtDuration(j.duration)));
      tr.appendChild(el("td", {}, j.environment));
      tr.appendChild(el("td", {}, fmtResources(j.resources)));
      tr.appendChild(el("td", { class: "metrics" }, fmtMetrics(j.latest_metrics)));
      return tr;
    }
    async function refresh() {
      try {
        const data = await getJSON(table.dataset.api);
        const rows = data.items.map(row);
        if (!rows.length) {
          const tr = el("tr", { class: "empty" });
          tr.appendChild(el("td", { colspan: "9", class: "muted" }, "No jobs yet."));
          rows.push(tr);
        }
        tbody.replaceChildren(...rows);
        if (stamp) stamp.textContent = "Updated " + new Date().toLocaleTimeString();
      } catch (e) {
        if (stamp) stamp.textContent = "Refresh failed (" + e.message + "); retrying.";
      }
      setTimeout(refresh, POLL_MS);
    }
    setTimeout(refresh, POLL_MS);
  }

  // -- metric charts: one small inline SVG per series (chart.js draws it) ---------------------
  function metricChart(name, points, color) {
    // x: the step where every point has one, else seconds since the first point.
    const bySteps = points.every((p) => p.step !== null && p.step !== undefined);
    const t0 = points.length ? points[0].ts : 0;
    const unit = bySteps ? "step " : "", suffix = bySteps ? "" : " s";
    return plot({ name, series: [{ name, color, points: points.map((p) => [bySteps ? p.step : p.ts - t0, p.value]) }],
      xFmt: (x) => unit + fmtNumber(x) + suffix, yFmt: name === "system/memory_bytes" ? fmtBytes : fmtNumber });
  }
  function drawCharts(box, series) {
    const names = Object.keys(series).filter((n) => series[n].length).sort(metricOrder);
    if (!names.length) return;
    const figures = names.map((name, i) => {
      const pts = series[name];
      const fig = el("figure", { class: "chart-box", "data-series": name });
      const cap = el("figcaption", {}, name + " ");
      cap.appendChild(el("span", { class: "muted" }, fmtMetric(name, pts[pts.length - 1].value)
        .replace(name + "=", "")));
      fig.appendChild(cap);
      fig.appendChild(metricChart(name, pts, COLORS[i % COLORS.length]));
      return fig;
    });
    box.replaceChildren(...figures);
  }

  // -- /jobs/OWNER/PROJECT/N -----------------------------------------------------------------
  function jobPage(root) {
    const api = root.dataset.api;
    const log = document.getElementById("log");
    const badge = document.getElementById("state");
    const stop = document.getElementById("stop");
    const charts = document.getElementById("charts");
    const outputs = document.getElementById("outputs");
    let state = root.dataset.state;
    let polls = 0;

    function showState(job) {
      state = job.state;
      root.dataset.state = state;
      setBadge(badge, state);
      stop.hidden = !ACTIVE.includes(state);
      document.getElementById("reason").textContent = job.reason || "—";
      document.getElementById("exit-code").textContent = job.exit_code === null ? "—" : job.exit_code;
      document.getElementById("duration").textContent = fmtDuration(job.duration);
      document.getElementById("started").textContent = fmtWhen(job.started_at);
      document.getElementById("finished").textContent = fmtWhen(job.finished_at);
    }
    async function refreshOutputs() {
      const data = await getJSON(api + "/output/files?recursive=1");
      const items = data.files.filter((f) => f.type === "file").map((f) => {
        const li = el("li");
        li.appendChild(el("a", { href: outputs.dataset.download + encodeURIComponent(f.path), download: "" }, f.path));
        li.appendChild(el("span", { class: "muted" }, " " + fmtBytes(f.size)));
        return li;
      });
      if (!items.length) items.push(el("li", { class: "muted" }, ACTIVE.includes(state) ? "Nothing yet." : "No output files."));
      outputs.replaceChildren(...items);
    }
    async function refreshMetrics() {
      drawCharts(charts, (await getJSON(api + "/metrics")).series);
    }
    async function refreshAll() {
      const results = await Promise.allSettled([getJSON(api).then(showState), refreshMetrics(), refreshOutputs()]);
      for (const r of results) if (r.status === "rejected") console.warn(r.reason);
    }
    async function poll() {
      if (!ACTIVE.includes(state)) return;
      polls++;
      try {
        showState(await getJSON(api));
        await refreshMetrics();
        if (polls % 3 === 0) await refreshOutputs();
      } catch (e) {
        console.warn(e);
      }
      if (ACTIVE.includes(state)) setTimeout(poll, POLL_MS);
      else refreshAll();
    }

    // The live log (common.js): every line from the start, then the tail, then `end`.
    followLog(api + "/logs?follow=1", log, (ended) => {
      if (ended) {
        state = ended;
        root.dataset.state = state;
        setBadge(badge, state);
        stop.hidden = !ACTIVE.includes(state);
      }
      refreshAll();
    });

    stop.addEventListener("click", async () => {
      stop.disabled = true;
      try {
        const r = await fetch(api + "/stop", { method: "POST", credentials: "same-origin",
          headers: { "X-XSRFToken": xsrf(), "Content-Type": "application/json" }, body: "{}" });
        const body = await r.json();
        if (!r.ok) alert(body.message || "Stopping failed: " + r.status);
        else showState(body);
      } finally {
        stop.disabled = false;
      }
    });

    // TensorBoard over this job's output: started (or found) by the platform, opened in a new tab.
    tensorboardButton(document.getElementById("tensorboard"), root.dataset.tensorboards, () => [root.dataset.job]);

    refreshAll().then(() => { if (ACTIVE.includes(state)) setTimeout(poll, POLL_MS); });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const table = document.getElementById("jobs");
    if (table && table.dataset.api) jobsTable(table);
    const job = document.getElementById("job");
    if (job && job.dataset.api) jobPage(job);
  });
})();
