// Floyd job pages: the live jobs table (/jobs) and one job's page (/jobs/OWNER/PROJECT/N).
// No framework and no external library: fetch(), EventSource and a small SVG plotter.
"use strict";

(function () {
  const ACTIVE = ["queued", "starting", "running"];
  const POLL_MS = 2000;

  // -- formatting (the same as the templates' helpers in handlers/pages.py) --------------
  function fmtDuration(s) {
    if (s === null || s === undefined) return "—";
    const n = Math.floor(s);
    if (n < 60) return s < 10 ? s.toFixed(1) + " s" : n + " s";
    const pad = (x) => String(x).padStart(2, "0");
    if (n < 3600) return Math.floor(n / 60) + "m " + pad(n % 60) + "s";
    return Math.floor(n / 3600) + "h " + pad(Math.floor((n % 3600) / 60)) + "m";
  }
  function fmtWhen(iso) { return iso ? iso.slice(0, 19).replace("T", " ") : "—"; }
  function fmtBytes(n) {
    if (n === null || n === undefined) return "—";
    const units = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return i === 0 ? n.toFixed(0) + " B" : n.toFixed(1) + " " + units[i];
  }
  function fmtResources(r) {
    const parts = [(+r.cpus).toString() + " CPU", fmtBytes(r.memory)];
    if (r.gpus) parts.push(r.gpus + " GPU");
    return parts.join(" · ");
  }
  function fmtNumber(v) { return Number(v.toPrecision(4)).toString(); }
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
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function setBadge(badge, state) {
    badge.textContent = state;
    badge.className = "badge state-" + state;
  }
  // JupyterHub's HubOAuth takes the login cookie on a script's request (GET included) only
  // together with the page's XSRF token.
  function xsrf() {
    const meta = document.querySelector('meta[name="xsrf"]');
    return meta ? meta.content : "";
  }
  async function getJSON(url) {
    const r = await fetch(url, { credentials: "same-origin",
      headers: { Accept: "application/json", "X-XSRFToken": xsrf() } });
    if (!r.ok) throw new Error(url + ": " + r.status);
    return r.json();
  }

  // -- /jobs: the table, refreshed every 2 s ------------------------------------------------
  function jobsTable(table) {
    const tbody = table.tBodies[0];
    const pages = table.dataset.pages;
    const stamp = document.getElementById("refreshed");
    function row(j) {
      const tr = el("tr", { "data-job": j.id });
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
          tr.appendChild(el("td", { colspan: "8", class: "muted" }, "No jobs yet."));
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

  // -- metric charts: one small inline SVG per series ----------------------------------------
  const SVGNS = "http://www.w3.org/2000/svg";
  const W = 360, H = 150, PAD = { l: 46, r: 10, t: 10, b: 22 };
  const COLORS = ["#2f6fde", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#1098ad"];
  function svgEl(tag, attrs, text) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function plot(name, points, color) {
    // x: the step where every point has one, else seconds since the first point.
    const bySteps = points.every((p) => p.step !== null && p.step !== undefined);
    const t0 = points.length ? points[0].ts : 0;
    const xs = points.map((p) => (bySteps ? p.step : p.ts - t0));
    const ys = points.map((p) => p.value);
    let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    if (x0 === x1) { x0 -= 1; x1 += 1; }
    if (y0 === y1) { const d = Math.abs(y0) * 0.1 || 1; y0 -= d; y1 += d; }
    const sx = (x) => PAD.l + ((x - x0) / (x1 - x0)) * (W - PAD.l - PAD.r);
    const sy = (y) => H - PAD.b - ((y - y0) / (y1 - y0)) * (H - PAD.t - PAD.b);
    const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", "data-series": name, role: "img" });
    svg.appendChild(svgEl("title", {}, name));
    svg.appendChild(svgEl("rect", { x: PAD.l, y: PAD.t, width: W - PAD.l - PAD.r, height: H - PAD.t - PAD.b,
      class: "plot-area" }));
    const label = name === "system/memory_bytes" ? fmtBytes : fmtNumber;
    for (const [y, v] of [[sy(y1), y1], [sy(y0), y0]]) {
      svg.appendChild(svgEl("line", { x1: PAD.l, x2: W - PAD.r, y1: y, y2: y, class: "grid" }));
      svg.appendChild(svgEl("text", { x: PAD.l - 4, y: y + 4, "text-anchor": "end", class: "tick" }, label(v)));
    }
    const unit = bySteps ? "step " : "";
    const suffix = bySteps ? "" : " s";
    svg.appendChild(svgEl("text", { x: PAD.l, y: H - 6, class: "tick" }, unit + fmtNumber(x0) + suffix));
    svg.appendChild(svgEl("text", { x: W - PAD.r, y: H - 6, "text-anchor": "end", class: "tick" },
      unit + fmtNumber(x1) + suffix));
    const pts = xs.map((x, i) => sx(x).toFixed(1) + "," + sy(ys[i]).toFixed(1)).join(" ");
    svg.appendChild(svgEl("polyline", { points: pts, fill: "none", stroke: color, "stroke-width": 2,
      "data-series": name }));
    const last = xs.length - 1;
    if (last >= 0) svg.appendChild(svgEl("circle", { cx: sx(xs[last]), cy: sy(ys[last]), r: 3, fill: color }));
    return svg;
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
      fig.appendChild(plot(name, pts, COLORS[i % COLORS.length]));
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
    let lastLine = -1;
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

    // The live log: every line from the start, then the tail, then an `end` event.
    // EventSource cannot send headers: the token travels as the _xsrf query argument.
    const source = new EventSource(api + "/logs?follow=1&_xsrf=" + encodeURIComponent(xsrf()));
    source.onmessage = (e) => {
      const n = parseInt(e.lastEventId, 10);
      if (!Number.isNaN(n)) {
        if (n <= lastLine) return; // a reconnect starts from the first line again
        lastLine = n;
      }
      const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
      log.appendChild(document.createTextNode(e.data + "\n"));
      if (stick) log.scrollTop = log.scrollHeight;
    };
    source.addEventListener("end", (e) => {
      source.close();
      try {
        state = JSON.parse(e.data).state;
        root.dataset.state = state;
        setBadge(badge, state);
        stop.hidden = !ACTIVE.includes(state);
      } catch (err) { /* keep the badge; refreshAll() sets it */ }
      log.classList.add("ended");
      refreshAll();
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) log.classList.add("ended");
    };

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

    refreshAll().then(() => { if (ACTIVE.includes(state)) setTimeout(poll, POLL_MS); });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const table = document.getElementById("jobs");
    if (table && table.dataset.api) jobsTable(table);
    const job = document.getElementById("job");
    if (job && job.dataset.api) jobPage(job);
  });
})();
