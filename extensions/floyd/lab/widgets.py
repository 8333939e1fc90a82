"""A live job monitor for notebooks (ipywidgets 8): state, elapsed time, log tail, metrics, Stop.

Two daemon threads keep it current while the notebook is idle: one follows the job's log
stream (SSE) and one polls the job record (every ``interval`` seconds) and its metrics. Widget
values set from a thread are sent to the front end by the kernel. Both threads end when the job
has ended (after a last refresh) or when the monitor is closed.
"""

from __future__ import annotations

import html
import math
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Protocol

import ipywidgets as w

from floyd.client.http import FloydClient
from floyd.formatting import fmt_duration, fmt_value
from floyd.lab.records import ENDED, elapsed


class Job(Protocol):
    """What the monitor reads of a job (``floyd.Job`` provides it). A protocol, so that this
    module and ``floyd.lab.job``, whose ``Job.monitor()`` builds a monitor, never import each other."""

    record: dict

    @property
    def client(self) -> FloydClient: ...

    @property
    def name(self) -> str: ...

    @property
    def args(self) -> tuple[str, str, int]: ...

    @property
    def output_dir(self) -> Path | None: ...

    def refresh(self) -> dict: ...

    def logs(self) -> str: ...

    def metrics(self) -> dict[str, list[dict]]: ...

    def stop(self) -> dict: ...

    def output_files(self, path: str = "") -> list[dict]: ...

STATE_COLORS = {"queued": "#888", "starting": "#b58900", "running": "#268bd2", "succeeded": "#2e7d32",
                "failed": "#c62828", "stopped": "#6d4c41", "timed_out": "#ef6c00", "lost": "#6a1b9a"}
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]


def state_badge(state: str) -> str:
    color = STATE_COLORS.get(state, "#888")
    return (f'<span style="background:{color};color:white;border-radius:3px;padding:1px 6px;'
            f'font-size:90%">{html.escape(state)}</span>')


def metrics_svg(series: dict[str, list[dict]], width: int = 360, height: int = 120, most: int = 4) -> str:
    """A small inline SVG line chart of up to ``most`` series (the job's own before system/...)."""
    names = sorted(series, key=lambda n: (n.startswith("system/"), n))
    names = [n for n in names if any(_finite(p.get("value")) for p in series[n])][:most]
    if not names:
        return '<div style="color:#888;font-size:90%">No metrics yet: print lines like ' \
               '{"metric": "loss", "value": 0.1, "step": 3}</div>'
    pad, legend_h = 4, 16
    plot_h = height - legend_h - 2 * pad
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'style="background:#fafafa;border:1px solid #ddd">']
    for i, name in enumerate(names):
        points = [p for p in series[name] if _finite(p.get("value"))]
        xs = [float(p["step"]) if _finite(p.get("step")) else float(k) for k, p in enumerate(points)]
        ys = [float(p["value"]) for p in points]
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        sx = (width - 2 * pad) / (x1 - x0) if x1 > x0 else 0.0
        sy = plot_h / (y1 - y0) if y1 > y0 else 0.0
        coords = []
        for x, y in zip(xs, ys, strict=True):
            px = pad + (x - x0) * sx if sx else width / 2
            py = pad + legend_h + (plot_h - (y - y0) * sy if sy else plot_h / 2)
            coords.append(f"{px:.1f},{py:.1f}")
        color = PALETTE[i % len(PALETTE)]
        if len(coords) == 1:
            cx, cy = coords[0].split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
        else:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{" ".join(coords)}"/>')
        label = f"{name}={fmt_value(ys[-1])}"
        parts.append(f'<text x="{pad + i * (width // len(names))}" y="{pad + 10}" font-size="11" '
                     f'font-family="sans-serif" fill="{color}">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class JobMonitor(w.VBox):
    """``floyd.Job(3).monitor()``: a widget that follows the job until it ends."""

    def __init__(self, job: Job, tail: int = 20, interval: float = 1.0, start: bool = True, **kwargs: Any) -> None:
        self.job = job
        self.interval = interval
        self.lines: deque[str] = deque(maxlen=tail)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._last_metrics = 0.0
        self.header = w.HTML()
        self.log_area = w.Textarea(value="", disabled=True, layout=w.Layout(width="100%", height="18em"))
        self.chart = w.HTML()
        self.stop_button = w.Button(description="Stop", icon="stop", button_style="danger",
                                    tooltip=f"Stop job {job.name}")
        self.output_button = w.Button(description="Open output", icon="folder-open",
                                      tooltip="Show where the output is and list its files")
        self.output = w.HTML()
        self.stop_button.on_click(self._on_stop)
        self.output_button.on_click(self._on_output)
        super().__init__([self.header, self.log_area, self.chart, w.HBox([self.stop_button, self.output_button]),
                          self.output], **kwargs)
        self.render(job.record or {"state": "?"})
        if start:
            self.start()

    # -- threads -----------------------------------------------------------------------------
    def start(self) -> None:
        for target, name in ((self._follow_log, "log"), (self._poll, "poll")):
            t = threading.Thread(target=target, name=f"floyd-monitor-{name}-{self.job.name}", daemon=True)
            self._threads.append(t)
            t.start()

    def close(self) -> None:
        self._stop.set()
        super().close()

    @property
    def done(self) -> bool:
        return not any(t.is_alive() for t in self._threads)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the monitor to finish following (the job ended); True when it did."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return self.done

    def _follow_log(self) -> None:
        try:
            for event, data in self.job.client.follow_job_log(*self.job.args):
                if self._stop.is_set():
                    return
                if event == "line":
                    with self._lock:
                        self.lines.append(data)
                        self.log_area.value = "\n".join(self.lines)
                elif event == "end":
                    return
        except Exception as exc:  # the stream broke (bridge restart): the poller goes on
            with self._lock:
                self.lines.append(f"[floyd monitor] log stream ended: {exc}")
                self.log_area.value = "\n".join(self.lines)

    def _poll(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                record = self.job.refresh()
                failures = 0
            except Exception as exc:
                failures += 1
                self.header.value = self._header_html(self.job.record or {"state": "?"}) + \
                    f' <span style="color:#c62828">({html.escape(str(exc))})</span>'
                if failures > 30:
                    return
                self._stop.wait(self.interval * 2)
                continue
            ended = record.get("state") in ENDED
            now = time.monotonic()
            if ended or now - self._last_metrics >= max(2.0, self.interval * 2):
                self._last_metrics = now
                try:
                    self.chart.value = metrics_svg(self.job.metrics())
                except Exception:
                    pass
            self.render(record)
            if ended:
                self._finish()
                return
            self._stop.wait(self.interval)

    def _finish(self) -> None:
        # Let the log thread drain the stream's last lines, then take the persisted log if it did not.
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(10)
        if not self.lines:
            try:
                text = self.job.logs()
                with self._lock:
                    self.lines.extend(text.splitlines())
                    self.log_area.value = "\n".join(self.lines)
            except Exception:
                pass
        self.stop_button.disabled = True

    # -- rendering ---------------------------------------------------------------------------
    def _header_html(self, record: dict) -> str:
        state = record.get("state", "?")
        took = elapsed(record)
        what = record.get("notebook") or record.get("command") or ""
        reason = record.get("reason") if state not in ("succeeded", "running") else None
        parts = [f"<b>{html.escape(self.job.name)}</b>", state_badge(state),
                 f"<span title='elapsed'>⏱ {fmt_duration(took, '-')}</span>"]
        if record.get("environment"):
            parts.append(f"<span style='color:#666'>{html.escape(record['environment'])}</span>")
        if what:
            parts.append(f"<code>{html.escape(what)}</code>")
        text = " &nbsp; ".join(parts)
        if reason:
            text += f"<div style='color:#666;font-size:90%'>{html.escape(reason)}</div>"
        return text

    def render(self, record: dict) -> None:
        self.header.value = self._header_html(record)
        self.stop_button.disabled = record.get("state") in ENDED

    # -- buttons -----------------------------------------------------------------------------
    def _on_stop(self, _button: Any = None) -> None:
        self.stop_button.disabled = True
        try:
            self.render(self.job.stop())
        except Exception as exc:
            self.output.value = f"<span style='color:#c62828'>{html.escape(getattr(exc, 'message', str(exc)))}</span>"

    def _on_output(self, _button: Any = None) -> None:
        where = self.job.output_dir
        try:
            files = self.job.output_files()
        except Exception as exc:
            self.output.value = f"<span style='color:#c62828'>{html.escape(getattr(exc, 'message', str(exc)))}</span>"
            return
        head = (f"Output: <code>{html.escape(str(where))}</code>" if where is not None
                else f"Output of {html.escape(self.job.name)} (download: <code>floyd output {html.escape(self.job.name)}</code>)")
        if not files:
            self.output.value = head + " — no files yet."
            return
        rows = "".join(f"<li><code>{html.escape(f['path'])}</code> <span style='color:#888'>"
                       f"{f.get('size', 0)} B</span></li>" for f in files[:200])
        more = f"<li>… and {len(files) - 200} more</li>" if len(files) > 200 else ""
        self.output.value = f"{head}<ul style='margin:2px 0'>{rows}{more}</ul>"
