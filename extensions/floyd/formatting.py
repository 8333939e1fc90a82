"""How times, sizes and numbers read, wherever a person sees them: the CLI's tables, the job
monitor widget and the bridge's pages (``jobs_bridge/handlers/pages.py``) use these, so a job's
duration or an output's size reads the same in a terminal, a notebook and a browser.

The pages' JavaScript (``jobs_bridge/static/common.js``) keeps its own copy for live updates and
formats the same way. Pure functions, no imports beyond the standard library: the bridge imports
this module without the rest of the client.
"""

from __future__ import annotations

EMPTY = "—"  # what a missing value reads as, unless the caller says otherwise
SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def fmt_duration(seconds: float | None, empty: str = EMPTY) -> str:
    """``4.2 s`` (under 10 s), ``42 s``, ``3m 07s``, ``2h 05m``."""
    if seconds is None:
        return empty
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{s} s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def fmt_bytes(n: float | None, empty: str = EMPTY) -> str:
    """Binary units: ``512 B``, ``1.5 KiB`` … ``2.0 TiB`` (the largest unit keeps growing)."""
    if n is None:
        return empty
    for unit in SIZE_UNITS:
        if abs(n) < 1024 or unit == SIZE_UNITS[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable: the last unit returns")


def fmt_ms(ms: float | None, empty: str = EMPTY) -> str:
    """A latency in milliseconds: 4 significant digits, no exponent (``12.35 ms``, ``1234 ms``)."""
    return empty if ms is None else f"{float(f'{ms:.4g}'):g} ms"


def fmt_value(value: object, empty: str = EMPTY) -> str:
    """A metric value: floats with 4 significant digits (``0.1235``), anything else as it is."""
    if value is None:
        return empty
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def fmt_when(iso: str | None, empty: str = EMPTY) -> str:
    """An ISO timestamp of the API as ``2024-05-01 12:34:56`` (UTC, as the API gives it)."""
    return iso[:19].replace("T", " ") if iso else empty


def fmt_resources(resources: dict, empty: str = EMPTY) -> str:
    """``2 CPU · 4.0 GiB · 1 GPU`` (GPUs only when there are some)."""
    parts = [f"{resources.get('cpus') or 0:g} CPU", fmt_bytes(resources.get("memory"), empty)]
    if resources.get("gpus"):
        parts.append(f"{resources['gpus']} GPU")
    return " · ".join(parts)
