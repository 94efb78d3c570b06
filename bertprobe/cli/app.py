"""The Typer app, the command decorator that maps user errors to exit 1, and ``main``."""

from __future__ import annotations

import contextvars
import functools
import inspect
import os
import sys
import typing
from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from bertprobe import __version__
from bertprobe.cli.options import with_shared_options
from bertprobe.errors import BertprobeError

# typer >= 0.22 vendors click; its UsageError is BadParameter's base class either way.
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def _usage_error(exc: Any) -> typer.Exit:
    """Print a usage error (bad option value, missing argument, unknown command) as one line + hint; exit 2."""
    from bertprobe import render

    ctx = getattr(exc, "ctx", None)
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    path = " ".join(["bertprobe", *reversed(names)])
    message = exc.format_message().replace("Value error, ", "")  # pydantic's prefix on a parser's refusal
    render.error(BertprobeError(message[:1].lower() + message[1:], hint=f"See `{path} --help`."))
    return typer.Exit(2)


class _Group(TyperGroup):
    """Typer's group, with usage errors printed like every other error instead of in a box."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except _UsageError as exc:
            raise _usage_error(exc) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _UsageError as exc:
            raise _usage_error(exc) from None


app = typer.Typer(
    cls=_Group,
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


# Paths taken as str rather than Path (``--input`` also takes "-" and "-.csv" for stdin).
_PATH_ARGUMENTS = frozenset({"input_file"})


def _labels(signature: inspect.Signature) -> dict[str, str]:
    """How the user typed each option: its long name (``--input`` for ``input_file``)."""
    labels = {}
    for name, parameter in signature.parameters.items():
        for info in typing.get_args(parameter.annotation)[1:]:
            if isinstance(info, typer.models.OptionInfo):
                # In Annotated[..., typer.Option("--from", "-f")] the first name lands in ``default``.
                named = (info.default, *(info.param_decls or ())) if isinstance(info.default, str) else info.param_decls
                decls = [d for d in (named or ()) if d.startswith("--")]
                labels[name] = decls[0].split("/")[0] if decls else "--" + name.replace("_", "-")
    return labels


def _check_utf8(arguments: dict[str, Any], labels: dict[str, str] | None = None) -> None:
    """Refuse text arguments that are not valid UTF-8 (Python hands them over as lone surrogates).

    Paths are left alone: a file name need not be UTF-8 on Linux, and open() takes it back as it was.
    """
    from bertprobe.errors import InputError

    for name, value in arguments.items():
        if name in _PATH_ARGUMENTS:
            continue
        for text in value if isinstance(value, (list, tuple)) else [value]:
            if not isinstance(text, str):
                continue
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as err:
                byte = text[err.start].encode("utf-8", "surrogateescape")
                raise InputError(
                    f"the {(labels or {}).get(name, name.replace('_', '-'))} given is not valid UTF-8 text "
                    f"(byte 0x{byte.hex()} at "
                    f"character {err.start + 1})",
                    hint="Pass the text in UTF-8 (check the terminal's or the script's encoding).",
                ) from None


def _os_error(err: OSError) -> BertprobeError:
    reason = err.strerror or str(err) or type(err).__name__
    where = f"{err.filename}: " if err.filename is not None else ""
    return BertprobeError(
        f"{where}{reason} (the system refused a read or a write)",
        hint="Check that the file can be read, the folder written to and the disk is not full; "
        "BERTPROBE_DEBUG=1 shows where it happened.",
    )


# The command being run and its options as parsed (not as spelt: "-m x" and "--model x" are one run): what a
# resumable --out run is keyed by. Set for each command call, in-process runs (tests, notebooks) included.
_INVOCATION: contextvars.ContextVar[tuple[str, dict[str, Any]] | None] = contextvars.ContextVar(
    "bertprobe_invocation", default=None
)


def invocation() -> tuple[str, dict[str, Any]] | None:
    """(command function, its parsed options) of the command running now, or None outside one."""
    return _INVOCATION.get()


def command(
    *args: Any, shared: tuple[str, ...] | None = None, **kwargs: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``app.command`` that turns a BertprobeError into one red line + hint on stderr and exit 1.

    A command that takes a parameter named ``common`` gets the shared options (``--model``, ``--revision``,
    ``--offline``, ``--device``, ``--dtype``, ``--json``, ``--seed``; or the subset named in ``shared``)
    added to its ``--help`` and receives them as one ``options.Common``.
    """

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        signature, regroup = with_shared_options(func, shared)
        labels = _labels(signature)

        @functools.wraps(func)
        def run(**call_kwargs: Any) -> Any:
            from bertprobe import render

            token = _INVOCATION.set((func.__name__, dict(call_kwargs)))
            try:
                _check_utf8(call_kwargs, labels)
                answer = func(**regroup(call_kwargs))
                sys.stdout.flush()  # a reader that left shows here, not as a traceback at exit
                return answer
            except BrokenPipeError:
                # The reader of stdout left (`--json | head -1`): it has what it wanted, and nobody reads an error
                # line about it. Quiet, exit 1 (as Python's own docs advise), and no second failure at exit.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                raise typer.Exit(1) from None
            except BertprobeError as err:
                if os.environ.get("BERTPROBE_DEBUG"):
                    render.traceback()
                render.error(err)
                raise typer.Exit(1) from None
            except KeyboardInterrupt:
                render.error(BertprobeError("interrupted", hint="Nothing half-written was kept."))
                raise typer.Exit(130) from None
            except OSError as err:
                # The system refused a read or a write (permissions, a full disk, a device error): the
                # user's environment, not a bug, so one line that names the file rather than a traceback.
                if os.environ.get("BERTPROBE_DEBUG"):
                    render.traceback()
                render.error(_os_error(err))
                raise typer.Exit(1) from None
            finally:
                _INVOCATION.reset(token)

        run.__signature__ = signature  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
        return app.command(*args, **kwargs)(run)

    return register


def main() -> None:
    app()
