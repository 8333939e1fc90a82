// One endpoint's page (/serving/OWNER/NAME): the traffic charts and per-version request stats,
// refreshed every few seconds from the metrics API; version states and replicas from the
// endpoint's record; the live log of the serving version. common.js and chart.js come first.
"use strict";

(function () {
  const POLL_MS = 3000;
  const BUCKET = 10; // seconds per metrics row (jobs_bridge/serving/metrics.py)
  const WINDOW = 3600, MIN_WINDOW = 60;
  const ERROR_COLOR = "#c92a2a";
  const { fmtMs, el, setBadge, getJSON, followLog, plot, COLORS } = window.Floyd;

  const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit",
    second: "2-digit", hour12: false });

  // -- the charts: requests (and errors) per 10 s, p50/p99 latency, one color per version ----
  function traffic(versions, now) {
    const rows = versions.flatMap((v) => v.series);
    if (!rows.length) return null;
    // From the first row (at most an hour ago, at least a minute ago) to now, every 10 s.
    const start = Math.max(Math.min(...rows.map((r) => r.ts), now - MIN_WINDOW), now - WINDOW);
    const grid = [];
    for (let t = start - (start % BUCKET); t <= now; t += BUCKET) grid.push(t);
    const withData = versions.filter((v) => v.series.length).sort((a, b) => a.number - b.number);
    const requests = [], latency = [], replicas = [], errors = new Map();
    withData.forEach((v, i) => {
      const color = COLORS[i % COLORS.length];
      const at = new Map(v.series.map((r) => [r.ts - (r.ts % BUCKET), r]));
      for (const r of v.series) {
        const t = r.ts - (r.ts % BUCKET);
        errors.set(t, (errors.get(t) || 0) + r.errors_4xx + r.errors_5xx);
      }
      requests.push({ name: "requests v" + v.number, color, points: grid.map((t) => [t, at.has(t) ? at.get(t).requests : 0]) });
      const q = (key) => grid.map((t) => [t, at.has(t) && at.get(t).requests ? at.get(t)[key] : null]);
      latency.push({ name: "p50 v" + v.number, color, dash: "4 3", points: q("p50_ms") });
      latency.push({ name: "p99 v" + v.number, color, points: q("p99_ms") });
      // Replicas per bucket (a bucket without a row keeps the count before it: a step line).
      let count = v.series.length ? v.series[0].replicas || 0 : 0;
      replicas.push({ name: "replicas v" + v.number, color, points: grid.map((t) => {
        if (at.has(t)) count = at.get(t).replicas || 0;
        return [t, count];
      }) });
    });
    requests.push({ name: "errors", color: ERROR_COLOR, dash: "2 2", points: grid.map((t) => [t, errors.get(t) || 0]) });
    const x = { x0: grid[0], x1: Math.max(now, grid[grid.length - 1]), xFmt: clock, y0: 0, nice: true };
    return [
      { title: "Requests per 10 s", chart: plot({ name: "requests", series: requests, ...x }), series: requests },
      { title: "Latency (ms)", chart: plot({ name: "latency", series: latency, yFmt: (v) => fmtMs(v).replace(" ms", ""),
        ...x }), series: latency },
      { title: "Replicas", chart: plot({ name: "replicas", series: replicas, ...x }), series: replicas },
    ];
  }
  function drawTraffic(box, versions) {
    const charts = traffic(versions, Date.now() / 1000);
    if (!charts) return;
    box.replaceChildren(...charts.map((c) => {
      const fig = el("figure", { class: "chart-box", "data-chart": c.chart.dataset.series });
      const cap = el("figcaption", {}, c.title + " ");
      for (const s of c.series) {
        const key = el("span", { class: "legend" + (s.dash ? " dashed" : "") }, s.name);
        key.style.setProperty("--c", s.color);
        cap.appendChild(key);
      }
      fig.appendChild(cap);
      fig.appendChild(c.chart);
      return fig;
    }));
  }

  // -- the stats table ----------------------------------------------------------------------
  function statsRow(v) {
    const tr = el("tr", { "data-version": v.number });
    tr.appendChild(el("td", {}, "v" + v.number));
    const st = el("td");
    st.appendChild(el("span", { class: "badge state-" + v.state }, v.state));
    tr.appendChild(st);
    tr.appendChild(el("td", { class: "requests" }, String(v.requests)));
    for (const c of ["2xx", "3xx", "4xx", "5xx"]) tr.appendChild(el("td", { class: "c" + c }, String(v.responses[c])));
    for (const q of ["p50", "p95", "p99"]) tr.appendChild(el("td", { class: q }, fmtMs(v.latency_ms[q])));
    tr.appendChild(el("td", { class: "in-flight" }, String(v.in_flight)));
    return tr;
  }
  function drawStats(tbody, versions) {
    const rows = versions.filter((v) => v.requests || v.state === "ready").map(statsRow);
    if (!rows.length) {
      const tr = el("tr", { class: "empty" });
      tr.appendChild(el("td", { colspan: "11", class: "muted" }, "No requests yet."));
      rows.push(tr);
    }
    tbody.replaceChildren(...rows);
  }

  // -- the versions table: state, reason, replicas (a new version asks for a reload) -----------
  function updateVersion(tr, v) {
    const cell = tr.querySelector("td.state");
    const badge = cell.querySelector(".badge");
    if (badge.textContent === v.state) {
      const reason = cell.querySelector("div.reason");
      if (reason && v.state !== "failed") reason.textContent = v.reason || "";
    } else {
      setBadge(badge, v.state);
      for (const old of cell.querySelectorAll(".reason")) old.remove();
      const tail = v.log_tail || [];
      if (v.state === "failed" && v.reason) {
        const details = el("details", { class: "reason" });
        details.appendChild(el("summary", {}, v.reason));
        if (tail.length) details.appendChild(el("pre", { class: "log tail" }, tail.join("\n")));
        cell.appendChild(details);
      } else if (v.reason) {
        cell.appendChild(el("div", { class: "reason muted small" }, v.reason));
      }
    }
    const restarts = v.replicas.items.reduce((n, r) => n + r.restarts, 0);
    const replicas = tr.querySelector("td.replicas");
    replicas.querySelector(".count").textContent = v.replicas.ready + "/" + v.replicas.desired + " ready";
    replicas.querySelector("div").textContent = restarts + (restarts === 1 ? " restart" : " restarts");
    const scaling = replicas.querySelector(".scaling");
    if (scaling) scaling.textContent = scalingNote(v);
  }

  // What the autoscaler did to a version: the last start from zero, held requests, a GPU cap.
  function scalingNote(v) {
    const notes = [];
    if (v.cold_start_s) notes.push("cold start " + v.cold_start_s.toFixed(1) + " s");
    if (v.waiting) notes.push(v.waiting + " request(s) waiting for a replica");
    if (v.capped) notes.push("capped: " + v.capped);
    return notes.join("; ");
  }

  function endpointPage(root) {
    const api = root.dataset.api;
    const box = document.getElementById("traffic");
    const stats = document.querySelector("#stats tbody");
    const stamp = document.getElementById("refreshed");
    const notice = document.getElementById("notice");
    const known = new Set(root.dataset.versions.split(",").filter(Boolean).map(Number));

    function showEndpoint(ep) {
      for (const v of ep.versions) {
        const tr = document.querySelector(`#versions tr[data-version="${v.number}"]`);
        if (tr) updateVersion(tr, v);
      }
      const fresh = ep.versions.filter((v) => !known.has(v.number)).map((v) => "v" + v.number + " (" + v.state + ")");
      const serving = ep.serving_version === null ? "" : String(ep.serving_version);
      const split = document.getElementById("split");
      if (split) split.textContent = Object.entries(ep.traffic || {}).sort((a, b) => b[0] - a[0])
        .map(([n, w]) => "v" + n + " " + w + "%").join(", ") || "the newest ready version takes it all";
      const badge = document.getElementById("serving");
      badge.textContent = serving ? "serving v" + serving : "not serving";
      badge.className = "badge " + (serving ? "state-ready" : "state-stopped");
      const changes = [];
      if (fresh.length) changes.push("New version " + fresh.join(", ") + ".");
      if (serving !== root.dataset.serving) changes.push(serving ? "v" + serving + " serves the endpoint now." : "No version serves the endpoint now.");
      if (changes.length) {
        const link = el("a", { href: "" }, "Reload");
        notice.replaceChildren(document.createTextNode(changes.join(" ") + " "), link, document.createTextNode(" to see it all."));
        notice.hidden = false;
      }
    }
    async function refresh() {
      const [m, ep] = await Promise.allSettled([getJSON(api + "/metrics?minutes=60"), getJSON(api)]);
      if (m.status === "fulfilled") {
        drawTraffic(box, m.value.versions);
        drawStats(stats, m.value.versions);
      }
      if (ep.status === "fulfilled") showEndpoint(ep.value);
      const failed = [m, ep].filter((r) => r.status === "rejected").map((r) => r.reason.message);
      stamp.textContent = failed.length ? "refresh failed (" + failed.join("; ") + "); retrying"
        : "updated " + new Date().toLocaleTimeString();
      setTimeout(refresh, POLL_MS);
    }

    const log = document.getElementById("log");
    if (log.dataset.version) followLog(api + "/versions/" + log.dataset.version + "/logs?follow=1", log);
    else log.textContent = "No version deployed yet.";
    refresh();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const root = document.getElementById("endpoint");
    if (root && root.dataset.api) endpointPage(root);
  });
})();
