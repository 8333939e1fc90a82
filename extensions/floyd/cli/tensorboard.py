"""``floyd tensorboard JOB [JOB…]``: a TensorBoard over those jobs' outputs, run by the platform.

The platform starts it (in the first job's environment image) or finds the one already running,
and serves it behind the Hub's login; it reads the outputs while the jobs run, and stops by itself
when nobody has looked at it for a while.
"""

from __future__ import annotations

import webbrowser
from contextlib import nullcontext

import click
from rich.markup import escape

from floyd.cli.consoles import err_console
from floyd.cli.context import Session
from floyd.cli.jobrefs import resolve_job
from floyd.cli.output import print_json, say


@click.command("tensorboard")
@click.argument("jobs", nargs=-1, required=True)
@click.option("--open", "open_browser", is_flag=True, help="Open it in the web browser too.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tensorboard(jobs: tuple[str, ...], open_browser: bool, as_json: bool) -> None:
    """Open a TensorBoard over the outputs of JOB… (12, alice/mnist-cnn/12): event files that
    torch, TensorFlow or tensorboardX wrote under /floyd/output.

    Prints its URL (sign in to the platform in the browser to see it).
    """
    s = Session()
    names = [str(resolve_job(s, job)) for job in jobs]
    with err_console.status("Starting TensorBoard…") if not as_json else nullcontext():
        board = s.client.open_tensorboard(names)
    url = s.client.url.rstrip("/") + board["url"]
    if as_json:
        print_json({**board, "url": url})
        return
    say(f"TensorBoard over {escape(', '.join(board['jobs']))}: {escape(url)}")
    if open_browser:
        webbrowser.open(url)
