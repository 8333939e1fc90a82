// Shared by the Floyd pages (job.js, endpoint.js): formatting, fetch with the page's XSRF token,
// and the live log that follows a server-sent event stream. Loaded first; sets window.Floyd.
"use strict";

(function () {
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
  function fmtMs(v) { return v === null || v === undefined ? "—" : fmtNumber(v) + " ms"; }

  // -- DOM ----------------------------------------------------------------------------------
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

  // -- requests -------------------------------------------------------------------------------
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

  // -- a live log -----------------------------------------------------------------------------
  // Every line from the start, then the tail, then an `end` event whose data is {"state": …}.
  // EventSource cannot send headers: the token travels as the _xsrf query argument. Line numbers
  // are event ids; a reconnect starts again from the first line, which is skipped.
  function followLog(url, pre, onEnd) {
    let lastLine = -1;
    const sep = url.includes("?") ? "&" : "?";
    const source = new EventSource(url + sep + "_xsrf=" + encodeURIComponent(xsrf()));
    source.onmessage = (e) => {
      const n = parseInt(e.lastEventId, 10);
      if (!Number.isNaN(n)) {
        if (n <= lastLine) return;
        lastLine = n;
      }
      const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
      pre.appendChild(document.createTextNode(e.data + "\n"));
      if (stick) pre.scrollTop = pre.scrollHeight;
    };
    source.addEventListener("end", (e) => {
      source.close();
      pre.classList.add("ended");
      let state = null;
      try { state = JSON.parse(e.data).state; } catch (err) { /* no state: the caller refreshes */ }
      if (onEnd) onEnd(state);
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) pre.classList.add("ended");
    };
    return source;
  }

  // A TensorBoard button (job, sweep and pipeline pages): a click asks the platform for a TensorBoard
  // over jobs() (POST /api/v1/tensorboards; started or found) and opens it in a new tab.
  function tensorboardButton(button, url, jobs) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      const label = button.textContent;
      button.textContent = "Starting TensorBoard…";
      const tab = window.open("", "_blank");
      try {
        const r = await fetch(url, { method: "POST", credentials: "same-origin",
          headers: { "X-XSRFToken": xsrf(), "Content-Type": "application/json" },
          body: JSON.stringify({ jobs: jobs() }) });
        const body = await r.json();
        if (!r.ok) { if (tab) tab.close(); alert(body.message || "TensorBoard failed: " + r.status); }
        else if (tab) tab.location = body.url;
        else window.location = body.url;
      } finally {
        button.disabled = false;
        button.textContent = label;
      }
    });
  }

  window.Floyd = Object.assign(window.Floyd || {}, {
    fmtDuration, fmtWhen, fmtBytes, fmtResources, fmtNumber, fmtMs, el, setBadge, xsrf, getJSON, followLog,
    tensorboardButton,
  });
})();
