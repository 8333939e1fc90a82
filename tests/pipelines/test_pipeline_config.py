"""floyd.yml's ``pipelines:`` read into the bridge's request (pure: no platform)."""

from __future__ import annotations

import pytest

from floyd.client.pipelines import apply_params, parse_saves, pipeline_steps
from floyd.client.project_config import ConfigError, settings_from_yaml

YML = """
command: python default.py
pipelines:
  train:
    steps:
      prepare:
        command: python prepare.py
        code: prepare/
        input: [mnist:3:raw]
      fit:
        command: python fit.py
        params: {lr: 0.1}
        resources: {cpus: 1, memory: 1G}
        input:
          - {from: prepare/output/clean, destination: clean}
      report:
        command: report.ipynb
        input: [{from: fit}]
"""


def test_steps_become_job_fields_with_from_inputs() -> None:
    steps = pipeline_steps(YML, "train", "alice/mnist")
    assert steps["prepare"] == {"command": "python prepare.py", "code": ["prepare/"],
                                "inputs": [{"source": "mnist:3", "mount": "raw"}]}
    assert steps["fit"]["inputs"] == [{"from": "prepare/output/clean", "mount": "clean"}]
    assert steps["fit"]["params"] == {"lr": "0.1"} and steps["fit"]["cpus"] == 1.0
    assert steps["report"] == {"notebook": "report.ipynb", "inputs": [{"from": "fit"}]}
    # The top level is still a job's defaults; pipelines: is not a job key.
    assert settings_from_yaml(YML).command == "python default.py"


def test_params_and_saves_flags() -> None:
    steps = apply_params(pipeline_steps(YML, "train", "alice/mnist"), ["fit.lr=0.5", "prepare.n=3"])
    assert steps["fit"]["params"] == {"lr": "0.5"} and steps["prepare"]["params"] == {"n": "3"}
    assert parse_saves(["prepare=clean-data"]) == {"prepare": "clean-data"}
    with pytest.raises(ConfigError, match="STEP.NAME=VALUE"):
        apply_params(steps, ["nostep.lr=1"])
    with pytest.raises(ConfigError, match="STEP=DATASET"):
        parse_saves(["prepare"])


@pytest.mark.parametrize("yml, message", [
    ("pipelines: {p: {steps: {a: {command: x, input: [{from: b}]}, b: {command: y, input: [{from: a}]}}}}",
     "a, b take inputs from each other in a cycle"),
    ("pipelines: {p: {steps: {a: {command: x, input: [{from: nope/output}]}}}}",
     "pipelines.p.steps.a.input[0].from: no step 'nope'"),
    ("pipelines: {p: {steps: {a: {command: x, comand: y}}}}", "unknown key 'comand' in pipelines.p.steps.a"),
    ("pipelines: {p: {steps: {a: {env: cpu}}}}", "pipelines.p.steps.a needs a command"),
    ("pipelines: {p: {stages: {}}}", "pipelines.p must be"),
    ("pipelines: {q: {steps: {a: {command: x}}}}", "no pipeline 'p'"),
])
def test_bad_pipelines_name_the_key(yml: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        pipeline_steps(yml, "p", "alice/x")
    assert message in err.value.message
