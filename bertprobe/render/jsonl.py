"""Many results in one run: JSON Lines (stdout or an atomic ``--out`` file) and a compact summary table.

Each JSON line is exactly the document a one-text run prints with ``--json`` (the same
``to_document``), written compactly on one line, plus ``index`` (the text's 1-based number in
the input) and ``line`` (its line in the input file, or null for command-line texts).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bertprobe.errors import InputError
from bertprobe.render import dumps, percent, to_document, utf8_stream, visible


def check_out_path(path: str | Path | None, reads: Path | None = None) -> Path | None:
    """Refuse an output file that cannot be written, or that is the file the texts are read from (``reads``),
    before any model work."""
    if path is None:
        return None
    target = Path(path)
    if str(target) == "-":  # stdout, to most tools: here it would be a file named "-", and nothing printed
        raise InputError(
            "--out - would write a file named '-'",
            hint="Leave --out out to print the results (with --json for JSON Lines), or give a file name.",
        )
    if target.is_dir():
        raise InputError(f"--out {target} is a folder", hint="Give a file name, e.g. --out scores.jsonl")
    if not target.parent.resolve().is_dir():
        raise InputError(f"--out {target}: the folder {target.parent} does not exist", hint="Create it first.")
    if reads is not None and target.exists() and target.samefile(reads):
        raise InputError(
            f"--out {target} is the input file: the results would replace the texts",
            hint="Write the results to another file, e.g. --out results.jsonl",
        )
    from bertprobe.atomic import through_links

    folder = through_links(target).parent  # where the atomic write puts it (through a symlink)
    try:  # the atomic write needs a new file beside the target: found out now, not after the computation
        handle, name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as err:
        raise InputError(
            f"--out {target}: cannot write in the folder {folder} ({err.strerror or err})",
            hint="Give a file in a folder you can write to.",
        ) from None
    os.close(handle)
    os.unlink(name)
    return target


def line_document(result: Any, index: int, line: int | None, seed: int | None) -> dict[str, Any]:
    return {"index": index, "line": line, **to_document(result, seed)}


class JsonLines:
    """A sink for one JSON object per line: stdout, or ``out`` written atomically (all lines or none).

    With ``out``, lines go to a temporary file beside it that replaces ``out`` only when the
    block ends without an error; an interrupted run leaves any earlier ``out`` as it was.
    With ``resumable`` (an opened :class:`bertprobe.atomic.ResumableFile` for ``out``), they are appended to its
    partial file after the ``count`` lines an interrupted run left there, ``commit`` records them chunk by chunk,
    and the complete file replaces ``out`` at the end. A run that stops after a commit keeps the partial file and
    journal for a rerun (and says so); one that stops before any removes the partial file.
    """

    def __init__(self, out: Path | None = None, enabled: bool = True, resumable: Any = None, count: int = 0) -> None:
        self.out = out
        self.enabled = enabled
        self.count = count
        self.resumed = count  # lines an interrupted run wrote
        self._resumable = resumable
        self._atomic: Any = None
        self._file: IO[str] | None = None
        self._ascii_only = False  # the stream is not UTF-8: every non-ASCII character escaped (render.utf8_stream)

    def __enter__(self) -> JsonLines:
        if self._resumable is not None:
            return self
        if self.out is not None:
            from bertprobe.atomic import atomic_path

            self._atomic = atomic_path(self.out)
            temporary = self._atomic.__enter__()
            self._file = temporary.open("w", encoding="utf-8")
        elif self.enabled:
            self._file = sys.stdout
            self._ascii_only = not utf8_stream(sys.stdout)  # the --out file is written in UTF-8
        return self

    def write(self, document: dict[str, Any]) -> None:
        self.count += 1
        if self._resumable is not None:
            from bertprobe.atomic import crash_point

            # Escaped as a UTF-8 file carries it: the same bytes as the plain --out file's lines.
            self._resumable.write((dumps(document, indent=None) + "\n").encode("utf-8"))
            crash_point("jsonl:line-written")
            return
        if self._file is None:
            return
        # Escaped as a one-text --json run writes it, and as the stream can carry it.
        self._file.write(dumps(document, indent=None, ascii_only=self._ascii_only) + "\n")
        if self.out is None:
            self._file.flush()
        else:
            from bertprobe.atomic import crash_point

            crash_point("jsonl:line-written")  # test hook: BERTPROBE_TEST_KILL_AFTER=jsonl:line-written

    def commit(self, state: dict[str, Any]) -> None:
        """A chunk is done: make its lines durable and record ``state`` with them (resumable ``out`` only)."""
        if self._resumable is not None:
            self._resumable.commit(state)

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if self._resumable is not None:
            if kind is None:
                self._resumable.finish()
            elif self._resumable.saved:
                self._resumable.keep()
                with contextlib.suppress(Exception):  # the error the run stops with comes next, whatever happens here
                    from bertprobe.render import notice

                    notice(
                        f"kept the results saved so far beside {self.out} ({self._resumable.partial.name}): "
                        "the same command again resumes after them"
                    )
            else:
                self._resumable.discard()
            return
        if self.out is None:
            return
        assert self._file is not None
        try:
            if kind is None:
                self._file.flush()
                os.fsync(self._file.fileno())
            self._file.close()
        except BaseException as failure:
            # Lines that did not reach the disk must not replace the old file: the temporary file's own fsync
            # would pass (Linux reports a write-back error once), and the rename would put a damaged file in place.
            with contextlib.suppress(OSError):
                self._file.close()
            self._atomic.__exit__(type(failure), failure, failure.__traceback__)
            raise
        self._atomic.__exit__(kind, exc, tb)


class Summary:
    """The compact view of many results: the first ``show`` rows, the count, and totals the caller keeps."""

    def __init__(self, title: str, columns: list[tuple[str, str]], show: int = 20) -> None:
        self.title = title
        self.columns = columns  # (header, justify)
        self.show = show
        self.rows: list[tuple[int, int | None, str, list[str]]] = []
        self.count = 0

    def add(self, index: int, line: int | None, text: str, cells: list[str]) -> None:
        self.count += 1
        if self.show == 0 or len(self.rows) < self.show:
            self.rows.append((index, line, text, cells))

    def render(self, console: Console, model: str, closing: list[str], written: str | None = None) -> None:
        console.print(Text.assemble((self.title, "bold"), ("  model: " + model, "dim")))
        table = Table()
        table.add_column("#", justify="right", style="dim")
        if any(line is not None for _, line, _, _ in self.rows):
            table.add_column("line", justify="right", style="dim")
            with_line = True
        else:
            with_line = False
        # The text column gets what the other columns leave of the terminal's width.
        others = [len(str(index)) for index, _, _, _ in self.rows] or [1]
        used = max(others) + (max([4] + [len(str(line)) for _, line, _, _ in self.rows]) if with_line else 0)
        for number, (header, justify) in enumerate(self.columns):
            widest = max([len(header)] + [len(cells[number]) for _, _, _, cells in self.rows])
            used += widest if justify == "right" else min(widest, 40)
        borders = 3 * (len(self.columns) + (3 if with_line else 2)) + 1
        table.add_column("text", overflow="ellipsis", no_wrap=True, max_width=max(16, console.width - used - borders))
        for header, justify in self.columns:
            table.add_column(header, justify=justify, no_wrap=justify == "right")  # type: ignore[arg-type]
        for index, line, text, cells in self.rows:
            first = [str(index)] + ([str(line) if line is not None else ""] if with_line else [])
            # Escaped here: Text() itself drops BEL, BS, VT, FF and CR, and the row would show another text.
            table.add_row(*first, Text(visible(text)), *[Text(visible(c)) for c in cells])
        console.print(table)
        if self.count > len(self.rows):
            where = f"all of them are in {written}" if written else "--json or --out FILE gives every one"
            console.print(Text(f"... and {self.count - len(self.rows)} more ({where})", style="dim"))
        for sentence in closing:
            console.print(Text(sentence))


def summarise_cells(result: Any) -> list[str]:
    """One cell describing a result of any text command, for the generic summary table."""
    describe: Callable[[Any], str] | None = _DESCRIBE.get(type(result).__name__)
    return [describe(result) if describe is not None else ""]


def _fill(result: Any) -> str:
    return f"top-1 fill: {result.filled}"


def _pll(result: Any) -> str:
    return f"PLL {result.pll:.3f} over {result.scored_tokens} tokens, pseudo-perplexity {result.pseudo_perplexity:.2f}"


def _corruption(result: Any) -> str:
    total = next((row for row in result.summary if row.action == "all"), None)
    if total is None or total.top1 is None:
        return ""
    return f"{total.count} predicted, original ranked first {percent(total.top1)}"


def _attribution(result: Any) -> str:
    # Words held fixed ([MASK], [CLS]) and words that move nothing are not "top" words.
    moving = [w for w in getattr(result, "words", None) or [] if not w.fixed and w.attribution != 0]
    top = sorted(moving, key=lambda w: -abs(w.normalised))[:3]
    cell = f"{result.target.label}: " + (", ".join(f"{w.text} {w.normalised:+.0%}" for w in top) or "no word moves it")
    convergence = getattr(result, "convergence", None)
    # The row says itself when its attributions are not to be trusted: a notice alone does not say which text.
    return cell + (" (NOT converged: see its notice)" if convergence is not None and not convergence.passed else "")


def _attention(result: Any) -> str:
    last = result.layers[-1]
    whose = f"head {result.head}'s attention" if result.head else "attention"
    return (
        f"last layer: {percent(last.special_share)} of {whose} on special tokens, entropy {last.entropy_bits:.2f} bits"
    )


def _context(result: Any) -> str:
    from bertprobe.render.fillmask import context_probability  # the digits the table and its reading use

    views = ", ".join(f"{view.context} {context_probability(view.targets[0].score)}" for view in result.views)
    return f"p({result.tracked[0]!r}): {views}"


_DESCRIBE: dict[str, Callable[[Any], str]] = {
    "FillMaskResult": _fill,
    "ContextResult": _context,
    "PseudoLikelihoodResult": _pll,
    "CorruptionResult": _corruption,
    "AttributionResult": _attribution,
    "AttentionResult": _attention,
}
