"""Options and the run loop shared by every command that takes many texts (``--input``, ``--out``, ...).

Imports nothing heavy at the top, so ``bertprobe --help`` stays light.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from bertprobe.cli.options import count

OnBad = Enum("OnBad", {name: name for name in ("stop", "skip")}, type=str)

InputOpt = Annotated[
    str | None,
    typer.Option(
        "--input",
        "-i",
        help="File of texts: .txt (one per line), .csv / .tsv / .jsonl (see --text-column), or - for stdin "
        "(-.jsonl, -.csv, -.tsv: stdin as that table). "
        "With --json, prints JSON Lines: one object per text, in input order.",
        show_default=False,
    ),
]
TextColumnOpt = Annotated[
    str | None,
    typer.Option(
        "--text-column",
        help="(--input csv/tsv/jsonl) Column holding the text; default text, else sentence, else the only column.",
        show_default=False,
    ),
]
OnBadOpt = Annotated[
    OnBad,
    typer.Option(
        "--on-bad",
        help="A bad line of --input (empty, too long for the model, no [MASK] where one is needed): stop names it "
        "and stops before any model work; skip leaves it out and lists it on stderr.",
    ),
]
OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="Write the results (JSON Lines, one object per text) to this file, atomically: all of it or nothing. "
        "A run stopped part-way keeps its finished chunks beside it: the same command again resumes after them.",
        show_default=False,
    ),
]
ShowOpt = Annotated[int, typer.Option("--show", help="Rows of the summary table for many texts (0: all).", **count(0))]
BatchSizeOpt = Annotated[
    int,
    typer.Option(
        "--batch-size",
        **count(1, 1 << 24),
        help="Padded word pieces per forward pass; the masked copies of many texts share passes. Memory per pass: "
        "about 150 MB for bert-base at 4096 (it grows in proportion).",
    ),
]

DEFAULT_CLOSING = (
    "{n} text(s), one row each in input order; --json or --out FILE gives each text's full result, the same "
    "object a one-text run prints."
)


def refuse_table_options(**given: bool) -> None:
    """--explain / --details shape one text's tables; many texts get a summary table and JSON Lines instead."""
    from bertprobe.errors import InputError

    named = [f"--{name}" for name, value in given.items() if value]
    if named:
        raise InputError(
            f"{' and '.join(named)} shape(s) the tables of one text; with --input or --out the terminal "
            "shows a summary",
            hint="Run the text on its own to see its tables, or drop the option.",
        )


Compute = Callable[[Any, list[Any], Callable[[int, int], None]], list[Any]]


def one_by_one(run_one: Callable[[Any, str], Any]) -> Compute:
    """A ``Compute`` that runs ``run_one(lm, text)`` on each text in turn (a line equals its one-text run)."""

    def compute(lm: Any, items: list[Any], progress: Callable[[int, int], None]) -> list[Any]:
        results = []
        for done, item in enumerate(items, start=1):
            results.append(run_one(lm, item.text))
            progress(done, len(items))
        return results

    return compute


SKIP_HINT = "Or pass --on-bad skip to leave such lines out and list them."


def _written(item: Any) -> str | tuple[str, str]:
    """What the user wrote for one input: its text, or (nsp) its pair of texts."""
    return item.text if item.pair is None else (item.text, item.pair)


@dataclass(frozen=True)
class Refused:
    """A text the computation refused (an ``InputError`` for it alone): passed on in its place, across processes."""

    index: int
    line: int | None
    reason: str
    hint: str


def refusing(compute: Compute, lm: Any, items: list[Any], progress: Callable[[int, int], None]) -> list[Any]:
    """``compute`` of the items; when it refuses, each item alone, so a refused one is named and the rest kept."""
    from bertprobe.errors import InputError

    try:
        return compute(lm, items, progress)
    except InputError as error:
        if len(items) == 1:
            return [Refused(items[0].index, items[0].line, error.message, error.hint)]
    results: list[Any] = []
    for item in items:
        try:
            results.extend(compute(lm, [item], lambda part, whole: None))
        except InputError as error:
            results.append(Refused(item.index, item.line, error.message, error.hint))
    return results


def run_many(
    common: Any,
    head: str,
    source: Any,
    compute: Compute,
    problem: Callable[[Any], Any] | None,
    *,
    on_bad: str = "stop",
    out: Path | None = None,
    show: int = 20,
    title: str,
    summarise: Callable[[Any], list[str]] | None = None,
    closing: Callable[[], list[str]] | None = None,
    columns: list[tuple[str, str]] | None = None,
) -> None:
    """Check every text, then compute chunk by chunk and print: one text as a one-text run would, many as
    JSON Lines (``--json`` / ``--out``) and a summary table. Under torchrun, processes split the texts and rank 0
    writes.
    """
    from bertprobe import distributed, inputs, render
    from bertprobe.api import note_special_tokens
    from bertprobe.errors import DataError, InputError
    from bertprobe.inputs import BadLine
    from bertprobe.render.jsonl import JsonLines, Summary, check_out_path, line_document, summarise_cells

    if source.stdin and distributed.launched():
        raise InputError(
            f"{source.option} - under torchrun: every process would read its own part of stdin",
            hint=f"Save the texts to a file and pass {source.option} FILE.",
        )
    out = check_out_path(out, source.path)
    place = distributed.world(getattr(common.device, "value", common.device))
    with source:
        lm = common.load(head)
        checked = source.check(problem(lm) if problem is not None else None, on_bad)
        if place.main and checked.bad:
            render.notice(f"skipped {len(checked.bad)} bad {source.list_bad(checked.bad)}")
        many = source.from_file or checked.count > 1 or out is not None or place.size > 1
        if not many:
            item = next(source.chunks(checked))[0]
            with render.progress_bar(title, enabled=not common.json) as progress:
                result = compute(lm, [item], progress)[0]
            note_special_tokens(result, lm, [_written(item)])
            for notice in getattr(result, "notices", []):
                if notice not in lm.notices:
                    render.notice(notice)
            render.show(result, json=common.json, seed=common.seed)
            return
        summary = Summary(title, columns or [("result", "left")], show)
        size = inputs.CHUNK_TEXTS  # read when the run starts, so a test can make chunks small
        resume = Resume()
        if out is not None and place.main:
            resume = _resume(out, source, lm, checked.good, size, place)
        notices: Counter[str] = Counter(dict(resume.notices))
        refused: list[BadLine] = list(resume.refused)
        summary.count = resume.results
        sink = JsonLines(
            out if place.main else None,
            enabled=common.json and place.main,
            resumable=resume.file,
            count=resume.results,
        )
        with sink, render.progress_bar(title, enabled=not common.json and place.main) as progress:
            done = resume.items

            def run(items: list[Any]) -> list[Any]:
                def inner(part: int, whole: int) -> None:
                    progress(done + len(items) * part / max(whole, 1), checked.good)  # type: ignore[arg-type]

                return refusing(compute, lm, items, inner if place.size == 1 else lambda part, whole: None)

            if done:
                progress(done, checked.good)
            chunks_done = resume.chunks
            # The texts an interrupted run finished are read past, not computed: the chunks after them are the
            # ones an uninterrupted run computes, so each packs its forward passes (and rounds) the same.
            for chunk in itertools.islice(source.chunks(checked, size), resume.chunks, None):
                for item, result in distributed.ordered([chunk], run, place):
                    if isinstance(result, Refused):
                        bad = BadLine(result.index, result.line, result.reason)
                        if on_bad == "stop":
                            raise DataError(
                                f"{bad.where(source.label)}: {bad.reason}",
                                hint=" ".join(filter(None, [result.hint, SKIP_HINT])),
                            )
                        refused.append(bad)
                        done += 1
                        continue
                    note_special_tokens(result, lm, [_written(item)])
                    sink.write(line_document(result, item.index, item.line, common.seed))
                    for notice in getattr(result, "notices", []):
                        if notice not in lm.notices and (notice in notices or len(notices) < 20):
                            notices[notice] += 1
                    if not common.json:
                        cells = summarise(result) if summarise is not None else summarise_cells(result)
                        summary.add(item.index, item.line, item.text, cells)
                    done += 1
                    progress(done, checked.good)
                chunks_done += 1
                sink.commit(
                    {
                        "chunks": chunks_done,
                        "items": done,
                        "results": sink.count,
                        "refused": [[bad.index, bad.line, bad.reason] for bad in refused],
                        "notices": [[notice, times] for notice, times in notices.items()],
                    }
                )
            if place.main and refused and sink.count == 0:
                raise DataError(
                    f"{source.label}: every one of its {checked.count} text(s) is bad "
                    f"({source.list_bad(sorted(checked.bad + refused, key=lambda b: b.index))})",
                    hint="Fix the lines listed.",
                )
    distributed.finish(place)
    if not place.main:
        return
    if refused:
        render.notice(f"skipped {len(refused)} bad {source.list_bad(refused)}")
    for notice, times in notices.items():
        render.notice(f"{times} text(s): {notice}" if times > 1 or sink.count > 1 else notice)
    if out is not None:
        earlier = f"; {sink.resumed} of them from the interrupted run" if sink.resumed else ""
        render.notice(f"Wrote {sink.count} result(s) to {out} (JSON Lines, input order{earlier})")
    if not common.json:
        lines = closing() if closing is not None else [DEFAULT_CLOSING.format(n=summary.count)]
        if sink.resumed:
            written = render.visible(str(out))
            lines.append(
                f"Resumed after {sink.resumed} result(s) of an interrupted run: the rows and any totals above cover "
                f"the {sink.count - sink.resumed} computed in this run; {written} holds all {sink.count}."
            )
        summary.render(render.out(), lm.name, lines, str(out) if out else None)


@dataclass
class Resume:
    """Where a run with ``--out`` starts: after what an interrupted run of the same command committed, or at 0."""

    file: Any = None  # the ResumableFile the results are appended to (None: not resumable)
    chunks: int = 0
    items: int = 0  # good texts done, refused ones included
    results: int = 0
    refused: list[Any] = field(default_factory=list)
    notices: list[tuple[str, int]] = field(default_factory=list)


def _resume(out: Path, source: Any, lm: Any, good: int, size: int, place: Any) -> Resume:
    """Open ``out``'s partial file and take up what an interrupted run of this same command left there.

    Only a run that can be repeated exactly resumes: one process, texts from arguments or a file. The journal must
    name the same arguments, model (its fingerprint, device, dtype and torch), input file (its sha256), bertprobe and
    chunk size, and the partial file must hold the bytes it records; otherwise the run starts over, and says why.
    """
    from bertprobe import __version__, render
    from bertprobe.atomic import ResumableFile
    from bertprobe.checkpoint import sha256_file
    from bertprobe.errors import InputError
    from bertprobe.inputs import BadLine

    if source.stdin or place.size > 1:
        if ResumableFile.remove_stale(out):
            why = "texts read from stdin" if source.stdin else "a run under torchrun"
            render.notice(f"not resuming the interrupted run of {out}: {why} starts over; its partial results removed")
        return Resume()
    identity = {
        "arguments": _arguments(),
        # The same weights on another device, dtype or torch round differently: a file of both would be mixed.
        "model": [lm.fingerprint, str(lm.device), str(lm.dtype), f"torch {sys.modules['torch'].__version__}"],
        "input file": sha256_file(source.path) if source.path is not None else None,
        "bertprobe version": __version__,
        "chunk size": size,
    }
    resumable = ResumableFile(out, identity)
    try:
        state, reason = resumable.open()
    except BlockingIOError:
        raise InputError(
            f"--out {out}: another bertprobe run is writing it now",
            hint="Wait for that run to end, or give this one another --out file.",
        ) from None
    resume = _taken_up(state, good, size) if state is not None else None
    if state is not None and resume is None:
        reason = "its journal is damaged"
        resumable.restart()
    if reason is not None:
        render.notice(f"not resuming the interrupted run of {out}: {reason}; starting over")
    if resume is None:
        return Resume(resumable)
    resume.file = resumable
    resume.refused = [BadLine(index, line, why) for index, line, why in resume.refused]
    render.notice(f"resuming {out} after {resume.results} result(s) of an interrupted run")
    return resume


# Options that change only what is printed, not one byte of --out.
_PRESENTATION = frozenset({"show", "json", "explain", "details"})


def _arguments() -> Any:
    """The command and its options as parsed (Paths, choices and numbers spelt one way), less the presentation
    ones; the command line as given when no command is running (a caller outside the CLI)."""
    from bertprobe.cli.app import invocation

    running = invocation()
    if running is None:
        return sys.argv[1:]
    name, options = running
    kept = {key: value for key, value in options.items() if key not in _PRESENTATION}
    return [name, json.loads(json.dumps(kept, sort_keys=True, default=str))]


def _taken_up(state: dict[str, Any], good: int, size: int) -> Resume | None:
    """The journal's state, if it is consistent with this input: whole chunks done, each text a result or refused."""
    try:
        chunks, items, results = (state[name] for name in ("chunks", "items", "results"))
        refused = [(int(index), line, str(why)) for index, line, why in state["refused"]]
        notices = [(str(notice), int(times)) for notice, times in state["notices"]]
    except (KeyError, TypeError, ValueError):
        return None
    if not all(isinstance(n, int) and n >= 0 for n in (chunks, items, results)):
        return None
    if items != min(chunks * size, good) or results + len(refused) != items:
        return None
    return Resume(None, chunks, items, results, refused, notices)  # type: ignore[arg-type]
