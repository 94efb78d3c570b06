"""Errors a user can cause. Each carries one line of message and one line of hint.

The CLI prints them as a red line plus a dim hint on stderr and exits 1; set
BERTPROBE_DEBUG=1 to see the traceback as well.
"""

from __future__ import annotations


class BertprobeError(Exception):
    """A problem the user can fix; ``hint`` says how."""

    default_hint = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __str__(self) -> str:
        return self.message


class InputError(BertprobeError):
    """The text, word or option values given do not make sense together."""


class MaskError(InputError):
    default_hint = 'Write the mask in the text, e.g. bertprobe fillmask "The cat sat on the [MASK]."'


class TextTooLongError(InputError):
    default_hint = "Shorten the text; BERT models see at most their max_position_embeddings tokens."


class ModelNotFoundError(BertprobeError):
    default_hint = "Run `bertprobe models` to see the models available here, or pass a hub id or a local directory."


class OfflineError(BertprobeError):
    default_hint = (
        "Connect once to download it, pass --model DIR of a local copy, or use a bundled model: --model minilm-mlm "
        "(masked LM: fillmask, cloze) or --model minilm (encoder only: sense, cls-train, attention)."
    )


class NetworkError(BertprobeError):
    default_hint = (
        "Check the connection, or work offline with --offline and a local or bundled model "
        "(--model minilm-mlm for a masked LM, --model minilm for an encoder)."
    )


class MissingHeadError(BertprobeError):
    default_hint = (
        "Pick a checkpoint with that head (e.g. bert-base-uncased); `bertprobe models` lists each model's heads."
    )


class DeviceError(BertprobeError):
    default_hint = "Use --device cpu, or --device auto to take the best device present."


class DataError(BertprobeError):
    """A data file the user gave is missing or malformed (message names file and line)."""

    default_hint = "Fix the file, or see `bertprobe --help` for the expected columns."


class ArtifactError(BertprobeError):
    """A saved probe or cache entry is unreadable, corrupt, or made for something else."""
