"""Tables for people, JSON for machines. Only this package imports rich.

``show(result)`` finds the renderer of a core result by convention: a result class
defined in ``bertprobe.<name>`` is drawn by ``RENDERERS[ClassName]`` in
``bertprobe.render.<name>``. Results go to stdout; notices, warnings and errors go to
stderr, so ``--json`` output can be piped as it is.
"""

from __future__ import annotations

import dataclasses
import importlib
import json as jsonlib
import math
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from bertprobe import __version__
from bertprobe.errors import InputError


def out() -> Console:
    """Console on the current stdout (made per call so test runners that swap stdout see it)."""
    return Console(file=sys.stdout, highlight=False)


def err() -> Console:
    return Console(file=sys.stderr, highlight=False)


def error(exc: Any) -> None:
    console = err()
    console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
    if getattr(exc, "hint", ""):
        console.print(f"[dim]hint: {escape(exc.hint)}[/]", soft_wrap=True)


def notice(message: str) -> None:
    err().print(f"[yellow]note:[/] {escape(message)}", soft_wrap=True)


def traceback() -> None:
    err().print_exception()


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "__fspath__"):
        return str(value)
    return value


def emit_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(jsonlib.dumps(_jsonable(doc), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def to_document(result: Any, seed: int | None = None) -> dict[str, Any]:
    """The JSON form of a result: its fields, plus what reproduces it."""
    doc = _jsonable(result)
    doc.setdefault("seed", seed)
    doc["bertprobe_version"] = __version__
    return doc


def show(result: Any, json: bool = False, seed: int | None = None, **view: Any) -> None:
    """Print a core result as JSON or as its Rich view; ``view`` (e.g. explain, details) goes to the view."""
    if json:
        emit_json(to_document(result, seed))
        return
    module = importlib.import_module("bertprobe.render." + type(result).__module__.rsplit(".", 1)[-1])
    module.RENDERERS[type(result).__name__](result, out(), **view)


def header(console: Console, title: str, result: Any) -> None:
    """One dim line naming the model (and revision) a result came from."""
    revision = f"@{result.revision[:10]}" if getattr(result, "revision", None) else ""
    console.print(f"[bold]{escape(title)}[/]  [dim]model: {escape(result.model)}{escape(revision)}[/]")


def bar(fraction: float, width: int = 20) -> str:
    """A proportional bar of block characters for a value in [0, 1]."""
    fraction = min(max(fraction, 0.0), 1.0)
    full, part = divmod(round(fraction * width * 8), 8)
    return "█" * full + ("" if part == 0 else " ▏▎▍▌▋▊▉"[part])


PLOT_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def check_plot_path(path: str | Path) -> Path:
    """Refuse a plot file that cannot be written, before any model work is done."""
    target = Path(path)
    if target.suffix.lower() not in PLOT_FORMATS:
        raise InputError(
            f"--plot {target}: unknown image type {target.suffix or '(none)'!r}",
            hint=f"End the file name with one of {', '.join(PLOT_FORMATS)}.",
        )
    if not target.parent.resolve().is_dir():
        raise InputError(f"--plot {target}: the folder {target.parent} does not exist", hint="Create it first.")
    return target


def show_models(infos: list[Any], json: bool = False) -> None:
    from bertprobe.render import models

    models.show(infos, json)


class progress_bar:  # used like a function: ``with progress_bar("...") as update``
    """A Rich progress bar with ETA on stderr; yields the ``(done, total)`` callback core code calls.

    Hidden when ``enabled`` is false (``--json`` keeps stderr quiet apart from notices).
    """

    def __init__(self, description: str, enabled: bool = True) -> None:
        self.description = description
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self):
        if not self.enabled or not err().is_terminal:  # a bar in a log file is noise
            return lambda done, total: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err(),
            transient=True,
        )
        self._progress.__enter__()
        self._task = self._progress.add_task(escape(self.description), total=None)

        def update(done: int, total: int) -> None:
            self._progress.update(self._task, completed=done, total=total)

        return update

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
