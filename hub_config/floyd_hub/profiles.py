"""The workspace profile form: what the user picks, rendered as HTML and read back."""

from __future__ import annotations

from html import escape
from typing import Any

FORM_CSS = """
<style>
#floyd-form .row { margin-bottom: .8rem; }
#floyd-form label.title { display: block; font-weight: 600; margin-bottom: .2rem; }
#floyd-form .ds { display: flex; gap: .6rem; align-items: center; margin: .2rem 0; }
#floyd-form .hint { color: #666; font-size: .9em; }
</style>
"""


def render_form(options: dict[str, Any]) -> str:
    """HTML for JupyterHub's spawn page, from the bridge's ``/workspaces/options``."""
    envs = options["environments"]
    limits = options["limits"]
    env_opts = "".join(
        f'<option value="{escape(e["name"])}" data-gpu="{int(e["gpu"])}">{escape(e["name"])} — '
        f'{escape(e["description"])}{" (GPU)" if e["gpu"] else ""}</option>' for e in envs
    )
    projects = "".join(f'<option value="{escape(p)}">' for p in options["projects"])
    default_project = options["projects"][0] if options["projects"] else "workspace"
    rows = []
    for ds in options["datasets"]:
        name = escape(ds["name"])
        versions = "".join(f'<option value="{v}">{v}{" (latest)" if i == 0 else ""}</option>'
                           for i, v in enumerate(ds["versions"]))
        rows.append(
            f'<div class="ds"><label><input type="checkbox" name="dataset" value="{name}"> {name}</label>'
            f'<select class="form-select form-select-sm" style="width:auto" name="version:{name}" aria-label="version of {name}">{versions}</select>'
            f'{" <span class=hint>public</span>" if ds["public"] else ""}</div>'
        )
    datasets = "".join(rows) or '<p class="hint">No datasets yet: <code>floyd data init NAME</code>.</p>'
    gpu_hint = (f'{limits["gpus_free"]} of {limits["gpus_total"]} free' if limits["gpus_total"]
                else "no GPU on this platform")
    return f"""{FORM_CSS}
<div id="floyd-form">
  <div class="row"><label class="title" for="environment">Environment</label>
    <select class="form-select" id="environment" name="environment">{env_opts}</select></div>
  <div class="row"><label class="title" for="project">Project (its files are /floyd/code)</label>
    <input class="form-control" id="project" name="project" list="floyd-projects" value="{escape(default_project)}">
    <datalist id="floyd-projects">{projects}</datalist></div>
  <div class="row"><label class="title" for="gpus">GPUs</label>
    <input class="form-control" id="gpus" name="gpus" type="number" min="0" max="{limits["max_gpus"]}" value="0">
    <span class="hint">0 = CPU only; {gpu_hint}</span></div>
  <div class="row"><label class="title" for="cpus">CPUs</label>
    <input class="form-control" id="cpus" name="cpus" type="number" step="0.5" min="0.5" max="{limits["max_cpus"]}"
      placeholder="environment default"></div>
  <div class="row"><label class="title" for="memory">Memory</label>
    <input class="form-control" id="memory" name="memory" placeholder="environment default, e.g. 4G"></div>
  <div class="row"><label class="title">Datasets (mounted read-only at /floyd/input/NAME)</label>{datasets}</div>
</div>"""


def read_form(formdata: dict[str, list[str]]) -> dict[str, Any]:
    """JupyterHub gives lists of strings; turn them into the bridge's workspace request."""

    def one(key: str) -> str:
        return (formdata.get(key) or [""])[0].strip()

    options: dict[str, Any] = {"environment": one("environment") or None, "project": one("project") or None}
    gpus = one("gpus")
    options["gpus"] = int(gpus) if gpus.isdigit() else (gpus or 0)
    if one("cpus"):
        options["cpus"] = one("cpus")
    if one("memory"):
        options["memory"] = one("memory")
    datasets = []
    for ref in formdata.get("dataset", []):
        version = one(f"version:{ref}")
        datasets.append({"ref": f"{ref}:{version}" if version else ref, "mount": ref.rsplit("/", 1)[-1]})
    options["datasets"] = datasets
    return options
