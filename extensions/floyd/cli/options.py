"""The options ``floyd run`` and ``floyd restart`` share, read into the one :class:`JobOptions`."""

from __future__ import annotations

from collections.abc import Callable

import click

from floyd.client.project_config import parse_param_flags
from floyd.client.request import JobOptions


class GpuArgs(click.Command):
    """``--gpu`` alone means one GPU (``--gpu "python train.py"`` still works); ``--gpu2`` two."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        out: list[str] = []
        for i, arg in enumerate(args):
            if arg == "--":
                out.extend(args[i:])
                break
            if arg == "--gpu2":
                out.append("--gpu=2")
            elif arg == "--gpu" and (i + 1 >= len(args) or not args[i + 1].isdigit()):
                out.append("--gpu=1")
            else:
                out.append(arg)
        return super().parse_args(ctx, out)


def job_options(fn: Callable) -> Callable:
    options = [
        click.option("--env", "environment", help="Environment to run in (the platform's list)."),
        click.option("--cpu", "cpu", is_flag=True, help="Run without a GPU."),
        click.option("--gpu", "gpu", type=click.IntRange(0), metavar="[N]",
                     help="Run with N GPUs (--gpu alone: 1)."),
        click.option("--cpus", type=float, help="CPUs for the job (e.g. 0.5, 2)."),
        click.option("--memory", help="Memory limit, e.g. 4G."),
        click.option("--data", "data", multiple=True, metavar="SRC[:MOUNT]",
                     help="Mount a dataset version (mnist:3, alice/mnist:3) or a job's output (12/output, "
                          "alice/mnist-cnn/12/output) at /floyd/input/MOUNT. Repeatable."),
        click.option("--param", "params", multiple=True, metavar="K=V",
                     help="A parameter (FLOYD_PARAM_K in the job). Repeatable."),
        click.option("--max-runtime", type=click.IntRange(0), help="Stop the job after this many seconds."),
        click.option("-m", "--message", help="Describe this run."),
        click.option("-f", "--follow", is_flag=True, help="Stream the log until the job ends (exit 0 if it succeeded)."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def options_from_flags(environment: str | None, cpu: bool, gpu: int | None, cpus: float | None, memory: str | None,
                       data: tuple[str, ...], params: tuple[str, ...], max_runtime: int | None,
                       message: str | None) -> JobOptions:
    """The flags as the front-end-neutral options (floyd.yml applies where a flag is not given)."""
    if cpu and gpu is not None:
        raise click.UsageError("Use --cpu or --gpu, not both.")
    options = JobOptions(environment=environment, gpus=0 if cpu else gpu, cpus=cpus, memory=memory, data=data,
                         params=parse_param_flags(params), max_runtime=max_runtime, message=message)
    options.settings()  # bad values are refused before anything is uploaded
    return options
