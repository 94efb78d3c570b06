"""Build the English training text for the offline model: narrative prose plus WordNet.

Sources (each a Debian package; see RECIPE.md for versions and licences):

- Jane Austen's six novels (public domain) from ``r-cran-janeaustenr``: read straight from
  the package's R lazy-load database (``data/Rdata.rdb``), no R needed. Each chapter becomes
  one document, one sentence per line, so that consecutive lines are true next sentences for
  next-sentence prediction.
- WordNet 3.0 glosses and example sentences (``wordnet-base``), tidied by
  ``scripts/wordnet_corpus.py``; each line is a document of its own (masked-LM only).

Lines are normalised (whitespace, quotes, dashes), exact duplicates (case-insensitive) are
dropped, and any line that matches a sentence of bertprobe's cloze sets (the ``[MASK]``
standing for any word) is dropped too, so the model is never trained on its own evaluation.

    apt-get download r-cran-janeaustenr wordnet-base
    for f in *.deb; do dpkg -x "$f" debs; done      # or apt-get install them
    python scripts/build_corpus.py --austen debs/usr/lib/R/site-library/janeaustenr \\
        --wordnet debs/usr/share/wordnet --out runs/corpus.txt
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import re
import struct
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

_STRSXP, _CHARSXP = 16, 9


class _XDR:
    """Just enough of R's XDR serialisation format to read character vectors."""

    def __init__(self, data: bytes) -> None:
        if data[:2] != b"X\n":
            raise ValueError("not an XDR R serialisation")
        self.data, self.pos = data, 2
        version = self.int()
        self.int(), self.int()  # writer and minimal reader versions
        if version == 3:
            length = self.int()
            self.pos += length  # the native encoding's name

    def int(self) -> int:
        (value,) = struct.unpack_from(">i", self.data, self.pos)
        self.pos += 4
        return value

    def strings(self) -> list[str]:
        flags = self.int()
        if flags & 0xFF != _STRSXP:
            raise ValueError(f"expected a character vector, found SEXP type {flags & 0xFF}")
        out = []
        for _ in range(self.int()):
            if self.int() & 0xFF != _CHARSXP:
                raise ValueError("malformed character vector")
            length = self.int()
            if length == -1:
                out.append("")
                continue
            out.append(self.data[self.pos : self.pos + length].decode("utf-8", "replace"))
            self.pos += length
        return out


def austen_books(package: Path) -> dict[str, list[str]]:
    """The lines of each novel, keyed by the object name in janeaustenr (emma, persuasion, ...)."""
    index = gzip.decompress((package / "data" / "Rdata.rdx").read_bytes())
    names = re.findall(rb"\x00\x04\x00\t\x00\x00\x00.([a-z]+)", index, re.DOTALL)
    names = [n.decode() for n in names if n not in (b"names", b"variables", b"references", b"compressed")]
    # The index stores (offset, length) pairs as integer vectors, in the order of the names.
    pairs = re.findall(rb"\x00\x00\x00\r\x00\x00\x00\x02(.{8})", index, re.DOTALL)
    database = (package / "data" / "Rdata.rdb").read_bytes()
    books = {}
    for name, pair in zip(names, pairs, strict=True):
        offset, length = struct.unpack(">ii", pair)
        blob = database[offset : offset + length]
        books[name] = _XDR(zlib.decompress(blob[4:])).strings()
    return books


_SENTENCE_END = re.compile(r'(?<=[.!?])["\u201d\u2019\']?\s+(?=["\u201c\u2018\']?[A-Z])')
_TITLES = re.compile(r"\b(Mr|Mrs|Dr|St|Messrs|Ms|Col|Capt|Gen|Lt|Sir)\.$")
_HEADING = re.compile(r"^(CHAPTER|VOLUME|Chapter|END OF|THE END|FINIS)\b|^[IVXLC]+\.?$|^[A-Z\s]+$")


def split_sentences(text: str) -> list[str]:
    """Sentences of a paragraph; a full stop after a title (Mr., Mrs., ...) ends none."""
    sentences: list[str] = []
    for piece in _SENTENCE_END.split(text):
        piece = piece.strip()
        if sentences and _TITLES.search(sentences[-1]):
            sentences[-1] += " " + piece
        elif piece:
            sentences.append(piece)
    return sentences


def tidy_prose(text: str) -> str:
    text = text.replace("_", "").replace("--", " \u2014 ")
    text = re.sub(r"\s+", " ", text).strip()
    return text


def chapters(lines: list[str]) -> list[list[str]]:
    """Chapters of a novel as lists of sentences (headings and the title page dropped)."""
    result: list[list[str]] = []
    paragraph: list[str] = []
    chapter: list[str] = []

    def end_paragraph() -> None:
        if paragraph:
            text = tidy_prose(" ".join(paragraph))
            chapter.extend(split_sentences(text))
            paragraph.clear()

    for raw in lines:
        line = raw.strip()
        if not line:
            end_paragraph()
            continue
        if _HEADING.match(line):
            end_paragraph()
            if chapter:
                result.append(list(chapter))
                chapter.clear()
            continue
        paragraph.append(line)
    end_paragraph()
    if chapter:
        result.append(chapter)
    return result


def _key(line: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", line.lower()).strip()


def cloze_patterns(paths: list[Path]) -> list[re.Pattern[str]]:
    patterns = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                text = json.loads(line)["text"]
                before, after = (_key(part) for part in text.split("[MASK]", 1))
                patterns.append(re.compile(re.escape(before) + r"\s*\S*\s*" + re.escape(after)))
    return patterns


def pack(lines: list[list[str]], words: int, draw: random.Random) -> list[list[str]]:
    """Shuffled one-line documents joined into lines of at most ``words`` words (a longer line stays alone)."""
    order = [line for (line,) in lines]
    draw.shuffle(order)
    packed: list[list[str]] = []
    current: list[str] = []
    size = 0
    for line in order:
        length = len(line.split())
        if current and size + length > words:
            packed.append([" ".join(current)])
            current, size = [], 0
        current.append(line if line[-1] in ".!?" else line + ".")  # glosses have no full stop of their own
        size += length
    if current:
        packed.append([" ".join(current)])
    return packed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--austen", type=Path, required=True, help="janeaustenr's installed package directory")
    parser.add_argument("--wordnet", type=Path, required=True, help="WordNet 3.0 dict directory")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--pack-words",
        type=int,
        default=0,
        help="Join WordNet lines (shuffled) into lines of up to this many words (0: one line each). A training "
        "example is one line padded to the longest of its batch, so short glosses waste most of a step on padding.",
    )
    args = parser.parse_args()

    from wordnet_corpus import sentences

    data = Path(__file__).resolve().parents[1] / "bertprobe" / "data"
    evaluation = cloze_patterns(sorted(data.glob("cloze*.jsonl")))
    seen: set[str] = set()
    dropped = {"duplicate": 0, "evaluation": 0}

    def keep(line: str) -> bool:
        key = _key(line)
        if not key or len(key.split()) < 3:
            return False
        if key in seen:
            dropped["duplicate"] += 1
            return False
        if any(p.search(key) for p in evaluation):
            dropped["evaluation"] += 1
            return False
        seen.add(key)
        return True

    documents: list[list[str]] = []
    for name, lines in sorted(austen_books(args.austen).items()):
        for chapter in chapters(lines):
            kept = [s for s in chapter if keep(s)]
            if kept:
                documents.append(kept)
        print(f"{name}: {sum(1 for _ in chapters(lines))} chapters", file=sys.stderr)
    prose = len(documents)
    definitions = [[line] for line in sentences(args.wordnet) if keep(line)]
    if args.pack_words:
        definitions = pack(definitions, args.pack_words, random.Random(f"pack/{args.seed}"))
    documents += definitions
    random.Random(args.seed).shuffle(documents)
    text = "\n\n".join("\n".join(document) for document in documents) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    lines = sum(len(d) for d in documents)
    words = len(text.split())
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    print(f"{args.out}: {len(documents):,} documents ({prose:,} chapters of prose, {len(definitions):,} WordNet "
          f"lines), {lines:,} lines, {words / 1e6:.2f} M words; dropped {dropped}; sha256 {digest}")  # fmt: skip


if __name__ == "__main__":
    main()
