"""One progress bar for the whole package (the CLI's subcommands, Monte Carlo).

    with progress_bar(total, "demo", enabled=not quiet) as bar:
        bar.advance()                      # one step done
        bar.advance(1, "next: Hessian")    # one step done; the next step's name
        bar.advance(512)                   # many at once

rich if it is installed, else tqdm if it is installed, else nothing.  Both are
optional and imported only when a bar is actually shown: never when
``enabled`` is false, nor when stderr is not a terminal (a pipe, a file,
pytest's capture, ``TERM=dumb``).  The bar draws on stderr, so stdout (tables,
JSON) stays clean.  Nothing from jaxsvd is imported here: a bottom-layer helper.
"""

from __future__ import annotations

import os
import sys

__all__ = ["NoBar", "progress_bar", "stderr_is_terminal"]


class NoBar:
    """The silent bar: same interface, does nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def advance(self, n: int = 1, description: str | None = None) -> None:
        pass


class _RichBar(NoBar):
    def __init__(self, total: int, description: str, transient: bool):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            transient=transient,
        )
        self._total, self._description = total, description

    def __enter__(self):
        self._progress.__enter__()
        self._task = self._progress.add_task(self._description, total=self._total)
        return self

    def __exit__(self, *exc):
        return self._progress.__exit__(*exc)

    def advance(self, n: int = 1, description: str | None = None) -> None:
        self._progress.update(self._task, advance=n, **({"description": description} if description else {}))


class _TqdmBar(NoBar):
    def __init__(self, total: int, description: str, transient: bool):
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc=description, file=sys.stderr, leave=not transient)

    def __exit__(self, *exc):
        self._bar.close()
        return False

    def advance(self, n: int = 1, description: str | None = None) -> None:
        if description:
            self._bar.set_description_str(description, refresh=False)
        self._bar.update(n)


def stderr_is_terminal() -> bool:
    """Whether a bar on stderr would be seen (a terminal that is not ``TERM=dumb``)."""
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        tty = bool(isatty()) if isatty is not None else False
    except (OSError, ValueError):  # a closed or detached stream
        tty = False
    return tty and os.environ.get("TERM") != "dumb"


def progress_bar(total: int, description: str, *, enabled: bool = True, transient: bool = False):
    """A context manager with ``advance(n=1, description=None)``: rich, else tqdm, else silent.

    Args:
      total: number of steps.
      description: the text before the bar (``advance`` may replace it).
      enabled: ``False`` gives the silent bar (``--quiet``, ``progress=False``).
      transient: remove the bar when done (rich; tqdm: ``leave=False``).

    Returns:
      A bar, silent when disabled, when stderr is not a terminal, or when
      neither rich nor tqdm is installed.
    """
    if not enabled or not stderr_is_terminal():
        return NoBar()
    for bar in (_RichBar, _TqdmBar):
        try:
            return bar(total, description, transient)
        except ImportError:
            continue
    return NoBar()
