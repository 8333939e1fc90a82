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


class CommandArgs(GpuArgs):
    """``floyd run python train.py --epochs 3``: an option of the user's command is not floyd's, so
    instead of click's bare "No such option" say how to pass it (quotes, or after ``--``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            words = positional_words(self, args, exc.option_name)
            lead = sum(isinstance(p, click.Argument) for p in self.params) - 1  # JOB of floyd restart
            if len(words) <= lead:
                raise
            start = next(i for i, a in enumerate(args) if a == exc.option_name or a.startswith(exc.option_name + "="))
            name, before, command = ctx.command_path, " ".join(words[:lead] + [""]), " ".join(words[lead:] + args[start:])
            raise click.UsageError(
                f"{exc.option_name} is not an option of {name}; if it is one of your command's, quote the "
                f'command: {name} {before}"{command}", or put it after --: {name} {before}-- {command}', ctx) from None


def positional_words(command: click.Command, args: list[str], unknown: str) -> list[str]:
    """The arguments given before the unknown option (values of floyd's own options skipped)."""
    takes_value = {name for p in command.params if isinstance(p, click.Option) and not p.is_flag
                   for name in p.opts}
    words: list[str] = []
    skip = False
    for arg in args:
        if arg == unknown or arg.startswith(unknown + "="):
            break
        if skip:
            skip = False
        elif arg in takes_value:
            skip = True
        elif not arg.startswith("-"):
            words.append(arg)
    return words


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
