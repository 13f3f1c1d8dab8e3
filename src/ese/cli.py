"""``ese``: the command line. It only builds the app: every command lives in ``ese/commands/``
(one module per command group, each with a ``register(app)``), which never imports this module;
``main`` turns project errors into one line and an exit status."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ese import __version__
from ese.commands.shared import console, err_console  # noqa: F401  (err_console: tests patch it here)
from ese.distributed import is_main
from ese.errors import EseError

app = typer.Typer(help="ESE in Python: train, compress, compile and accelerate a sparse LSTM acoustic model.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)


def _version(value: bool) -> None:
    if value:
        console.print(f"ese {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """ESE in Python: train, compress, compile and accelerate a sparse LSTM acoustic model."""


# each command group lives in ese/commands/<group>.py with a register(app); a group whose
# module is absent (not yet built) is skipped
import importlib  # noqa: E402

for _name in ("run", "data", "train", "recognize", "prune", "quantize", "compile", "simulate", "bench", "rtl", "interop", "report", "tune"):
    try:
        _stage = importlib.import_module(f"ese.commands.{_name}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"ese.commands.{_name}":
            raise
        continue
    _stage.register(app)


def main() -> None:
    """Entry point: project errors become one red line and a non-zero exit code.

    A write that fails outside ``ese.atomic`` (a full or read-only disk under a tool's output
    directory) is reported the same way, naming the file and the cause.
    """
    from ese.atomic import WRITE_ERRNOS, describe_write_error

    _log_warnings()
    if not is_main():  # a data-parallel job (torchrun): rank 0 alone prints; errors from any rank
        console.quiet = err_console.quiet = True
    try:
        app()
    except EseError as exc:
        err_console.quiet = False
        err_console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        sys.exit(exc.exit_code)
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS or not exc.filename:
            raise
        err_console.quiet = False
        err_console.print(f"[bold red]error:[/] {describe_write_error(exc.filename, exc)}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted; re-run the same command to resume")
        sys.exit(130)


def _log_warnings() -> None:
    """Warnings logged by ese's modules reach the user as one plain line each."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    handler.setLevel(logging.WARNING)
    logging.getLogger("ese").addHandler(handler)


if __name__ == "__main__":
    main()
