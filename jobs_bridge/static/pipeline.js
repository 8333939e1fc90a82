// The pipeline page: the run's steps drawn as a DAG (SVG, one column per depth), each box
// coloured by its state and linked to its job's page, refreshed from the API until the run ends.
"use strict";

(function () {
  const { el, setBadge, getJSON, xsrf, tensorboardButton } = window.Floyd;
  const SVG = "http://www.w3.org/2000/svg";
  const BOX_W = 170, BOX_H = 46, GAP_X = 60, GAP_Y = 18, POLL_MS = 1000;

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Depth of a step = 1 + the deepest step it takes inputs from (steps arrive in topological order).
  function layout(steps) {
    const depth = {}, rows = {}, pos = {};
    for (const st of steps) {
      depth[st.name] = st.needs.length ? 1 + Math.max(...st.needs.map((n) => depth[n])) : 0;
      const d = depth[st.name];
      rows[d] = (rows[d] || 0) + 1;
      pos[st.name] = { x: d * (BOX_W + GAP_X) + 10, y: (rows[d] - 1) * (BOX_H + GAP_Y) + 10 };
    }
    const width = (Math.max(0, ...Object.values(depth)) + 1) * (BOX_W + GAP_X) + 20;
    const height = Math.max(1, ...Object.values(rows)) * (BOX_H + GAP_Y) + 20;
    return { pos, width, height };
  }

  function stateOf(st) {
    return st.state === "running" && st.job_state ? st.job_state : st.state;
  }

  function draw(root, run, jobsUrl) {
    const { pos, width, height } = layout(run.steps);
    root.replaceChildren();
    root.setAttribute("width", width);
    root.setAttribute("height", height);
    root.setAttribute("viewBox", "0 0 " + width + " " + height);
    for (const st of run.steps) {
      for (const n of st.needs) {
        const a = pos[n], b = pos[st.name];
        root.appendChild(svg("path", { class: "dag-edge", d: "M" + (a.x + BOX_W) + "," + (a.y + BOX_H / 2)
          + " C" + (a.x + BOX_W + GAP_X / 2) + "," + (a.y + BOX_H / 2) + " " + (b.x - GAP_X / 2) + ","
          + (b.y + BOX_H / 2) + " " + b.x + "," + (b.y + BOX_H / 2) }));
      }
    }
    for (const st of run.steps) {
      const p = pos[st.name], state = stateOf(st);
      const box = st.job ? svg("a", { href: jobsUrl + st.job }) : svg("g", {});
      box.setAttribute("class", "dag-step state-" + state);
      box.setAttribute("data-step", st.name);
      box.setAttribute("data-state", state);
      box.appendChild(svg("rect", { x: p.x, y: p.y, width: BOX_W, height: BOX_H, rx: 6 }));
      box.appendChild(svg("text", { x: p.x + 10, y: p.y + 19, class: "dag-name" }, st.name));
      const note = st.reused_from ? "reused from job " + st.reused_from
        : st.job_number ? state + " · job " + st.job_number : state;
      box.appendChild(svg("text", { x: p.x + 10, y: p.y + 37, class: "dag-note" }, note));
      root.appendChild(box);
    }
  }

  function fillTable(table, run, jobsUrl) {
    for (const st of run.steps) {
      const row = table.querySelector('tr[data-step="' + CSS.escape(st.name) + '"]');
      if (!row) continue;
      const cells = row.querySelectorAll("td");
      setBadge(cells[1].firstElementChild, stateOf(st));
      cells[2].replaceChildren(st.job ? el("a", { href: jobsUrl + st.job }, String(st.job_number)) : "—");
      cells[3].textContent = (st.reason || "") + (st.saved_as ? " · saved as " + st.saved_as : "") +
        (st.model_saved_as ? " · model " + st.model_saved_as : "");
    }
  }

  function start() {
    const page = document.getElementById("pipeline");
    if (!page) return;
    const api = page.dataset.api, jobsUrl = page.dataset.jobs;
    const dag = document.getElementById("dag"), badge = document.getElementById("state");
    const stop = document.getElementById("stop"), table = document.getElementById("steps");

    let steps = [];
    async function refresh() {
      const run = await getJSON(api);
      steps = run.steps;
      draw(dag, run, jobsUrl);
      fillTable(table, run, jobsUrl);
      setBadge(badge, run.state);
      stop.hidden = run.state !== "running";
      document.getElementById("finished").textContent = window.Floyd.fmtWhen(run.finished_at);
      return run;
    }
    async function poll() {
      let run = null;
      try { run = await refresh(); } catch (e) { /* a missed refresh: the next one catches up */ }
      if (!run || run.state === "running") setTimeout(poll, POLL_MS);
    }
    stop.addEventListener("click", async () => {
      stop.disabled = true;
      try {
        const r = await fetch(api + "/stop", { method: "POST", credentials: "same-origin",
          headers: { "X-XSRFToken": xsrf(), "Content-Type": "application/json" }, body: "{}" });
        if (!r.ok) alert((await r.json()).message || "Stopping failed: " + r.status);
        await refresh();
      } finally {
        stop.disabled = false;
      }
    });
    // One TensorBoard over the step jobs this run has so far (a reused step's is its earlier job).
    tensorboardButton(document.getElementById("tensorboard"), page.dataset.tensorboards,
      () => [...new Set(steps.filter((st) => st.job).map((st) => st.job))]);
    poll();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
