"""The Typer app, the command decorator that maps user errors to exit 1, and ``main``."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Annotated, Any

import typer

from bertprobe import __version__
from bertprobe.errors import BertprobeError

app = typer.Typer(
    name="bertprobe",
    help="See how BERT works: masked-word predictions, word senses, [CLS] probes and attributions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bertprobe {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """See how BERT works: masked-word predictions, word senses, [CLS] probes and attributions."""


def command(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``app.command`` that turns a BertprobeError into one red line + hint on stderr and exit 1."""

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def run(*call_args: Any, **call_kwargs: Any) -> Any:
            from bertprobe import render

            try:
                return func(*call_args, **call_kwargs)
            except BertprobeError as err:
                if os.environ.get("BERTPROBE_DEBUG"):
                    render.traceback()
                render.error(err)
                raise typer.Exit(1) from None
            except KeyboardInterrupt:
                render.error(BertprobeError("interrupted", hint="Nothing half-written was kept."))
                raise typer.Exit(130) from None

        return app.command(*args, **kwargs)(run)

    return register


def main() -> None:
    app()
