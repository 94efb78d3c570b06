"""What a checkpoint's ``[CLS]`` vector was trained for: next-sentence prediction, something else, or nothing.

BERT's ``[CLS]`` gets a meaning only from a sentence-level training task: in BERT, next-sentence
prediction (NSP) reads it through the pooler. RoBERTa dropped NSP, ALBERT replaced it with
sentence-order prediction, distilled and sentence-embedding models replaced it with other
objectives. The answer is read from the checkpoint itself (``model_type``, the heads its weights
hold, a sentence-transformers pooling config, the name it was trained from) and, for the models
bertprobe ships, from their recipe; never assumed from the model's name alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NSP = "next-sentence prediction"
SOP = "sentence-order prediction"
NONE = "no sentence-level task"
UNKNOWN = "unknown"
FINE_TUNED = "sentence classification (fine-tuned)"

# What bertprobe's own recipe did to a shipped checkpoint (see its RECIPE.md).
BUNDLED_TRAINING = {
    "minilm-mlm": "its encoder is all-MiniLM-L6-v2 (distilled without next-sentence prediction, then tuned by "
    "sentence-transformers for mean-pooled sentence similarity); bertprobe trained it further with the masked-LM "
    "loss and an NSP head on [CLS], which stayed at chance on a story it never saw and was left out (see its "
    "RECIPE.md)",
    "tiny-mlm": "bertprobe trained it further with the masked-LM loss only (see its RECIPE.md), which never "
    "asks [CLS] for anything",
}
_NO_NSP_FAMILIES = {
    "roberta": "RoBERTa dropped next-sentence prediction from pretraining: its <s> token (RoBERTa's [CLS]) "
    "was trained by no sentence-level task",
    "xlm-roberta": "XLM-RoBERTa, like RoBERTa, was pretrained without next-sentence prediction: its <s> token "
    "(its [CLS]) was trained by no sentence-level task",
    "camembert": "CamemBERT, like RoBERTa, was pretrained without next-sentence prediction: its [CLS] was "
    "trained by no sentence-level task",
    "distilbert": "DistilBERT was distilled from BERT without next-sentence prediction: its [CLS] was trained "
    "by no sentence-level task",
    "electra": "ELECTRA is trained to spot replaced tokens, so no sentence-level task trained its [CLS]",
    "deberta": "DeBERTa was pretrained with masked-LM only: no sentence-level task trained its [CLS]",
    "deberta-v2": "DeBERTa-v2/v3 was pretrained without next-sentence prediction: no sentence-level task trained "
    "its [CLS]",
    "modernbert": "ModernBERT was pretrained with masked-LM only: no sentence-level task trained its [CLS]",
    "mpnet": "MPNet was pretrained with masked and permuted language modelling, without next-sentence prediction: "
    "no sentence-level task trained its [CLS]",
}
# The "not next" second sentences of ``bertprobe pretrain --nsp``, by its --nsp-negatives.
_PRETRAIN_NEGATIVES = {
    "other-document": "a sentence of another document",
    "same-document": "another sentence of the same document, not the next one",
    "mixed": "a sentence of another document or another sentence of the same document, half and half",
}


@dataclass
class ClsOrigin:
    """What trained ``[CLS]``, in one phrase (``objective``) and one or two plain sentences (``note``)."""

    objective: str  # NSP, SOP, NONE or UNKNOWN
    note: str


def _json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _sentence_pooling(path: Path) -> str | None:
    """The pooling of a sentence-transformers checkpoint (``mean``, ``cls``, ``max``), or None if it is not one."""
    if not (path / "modules.json").is_file():
        return None
    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    for module in modules if isinstance(modules, list) else []:
        if isinstance(module, dict) and str(module.get("type", "")).endswith("Pooling"):
            config = _json(path / str(module.get("path", "")) / "config.json")
            for key, name in (
                ("pooling_mode_cls_token", "cls"),
                ("pooling_mode_mean_tokens", "mean"),
                ("pooling_mode_max_tokens", "max"),
                ("pooling_mode_mean_sqrt_len_tokens", "mean"),
            ):
                if config.get(key):
                    return name
            return "unknown"
    return None


def _pretrain_settings(path: Path) -> dict[str, Any]:
    """The settings of the ``bertprobe pretrain`` run that wrote the checkpoint at ``path`` (empty if none did).

    A run's checkpoint holds its ``trainer_state.json``; the model exported at the top of ``--out`` sits beside
    the run's latest checkpoint.
    """
    candidates = [path / "trainer_state.json"]
    candidates += sorted(path.glob("checkpoint-*/trainer_state.json"), reverse=True)[:1]
    for candidate in candidates:
        settings = _json(candidate).get("settings")
        if isinstance(settings, dict):
            return settings
    return {}


# Heads that read [CLS] for a sentence-level label: a checkpoint saved with one was fine-tuned through [CLS].
_CLASSIFIERS = ("ForSequenceClassification", "ForMultipleChoice")


def _fine_tuned(label: str, config: dict[str, Any]) -> ClsOrigin | None:
    """A checkpoint saved as a sentence classifier: its [CLS] was fine-tuned for that task, whatever the family."""
    architectures = [str(a) for a in config.get("architectures") or [] if str(a).endswith(_CLASSIFIERS)]
    if not architectures:
        return None
    names = [str(n) for n in (config.get("id2label") or {}).values()]
    told = (
        f"tell {', '.join(map(repr, names))} apart"
        if names and not all(n.startswith("LABEL_") for n in names)
        else "answer a sentence-level task"
    )
    return ClsOrigin(
        FINE_TUNED,
        f"{label} checkpoint is a {architectures[0]}: its [CLS] was fine-tuned, through the classification head, to "
        f"{told}, so a probe on it reads back that fine-tuning, not what pretraining alone put there.",
    )


def describe(name: str, path: Path | str, config: dict[str, Any], heads: set[str] | frozenset[str]) -> ClsOrigin:
    """What ``[CLS]`` of the checkpoint at ``path`` was trained for, from its files."""
    path = Path(path)
    model_type = str(config.get("model_type", ""))
    label = f"{name}'s"
    fine_tuned = _fine_tuned(label, config)
    if fine_tuned is not None:
        return fine_tuned
    pooling = _sentence_pooling(path)
    if pooling is not None:
        # Checked before the family: the sentence-embedding fine-tune trained [CLS] (directly with cls pooling).
        origin = str(config.get("_name_or_path", ""))
        used = "[CLS] itself" if pooling == "cls" else f"the {pooling} of all its tokens, not [CLS]"
        tuned = f"a sentence-transformers model, fine-tuned so that its sentence vector ({used}) places similar "
        tuned += "sentences close together."
        if "minilm" in origin.lower():
            base = (
                f" Its base, {origin.rsplit('/', 1)[-1]}, was distilled from a larger model's self-attention, also "
                "without next-sentence prediction."
            )
        elif model_type in _NO_NSP_FAMILIES or model_type == "albert":
            base = f" Its base, a {model_type} model, was pretrained without next-sentence prediction."
        else:
            return ClsOrigin(
                UNKNOWN,
                f"{label} checkpoint is {tuned} Whether its base was pretrained with next-sentence prediction "
                "(bert-base-uncased was) is not recorded in it.",
            )
        return ClsOrigin(
            NONE if pooling != "cls" else UNKNOWN,
            f"{label} [CLS] was never trained with next-sentence prediction: it is {tuned}{base}",
        )
    architectures = [str(a) for a in config.get("architectures") or []]
    if model_type == "electra" and "mlm" in heads and not any(a.endswith("ForPreTraining") for a in architectures):
        # ELECTRA's generator (or a discriminator given an MLM head): masked-LM, not replaced-token detection.
        return ClsOrigin(
            NONE,
            "This ELECTRA checkpoint holds a masked-LM head, as ELECTRA's generator does (trained by masked-LM to "
            "propose the replacements its discriminator learns to spot): neither is a sentence-level task, so none "
            "trained its [CLS].",
        )
    if model_type in _NO_NSP_FAMILIES:
        return ClsOrigin(NONE, f"{_NO_NSP_FAMILIES[model_type]}.")
    if model_type == "albert":
        return ClsOrigin(
            SOP,
            "ALBERT replaced next-sentence prediction with sentence-order prediction: its [CLS] was trained to "
            "tell whether two consecutive segments are in their original order.",
        )
    trained = _pretrain_settings(path) if "nsp" in heads else {}
    if trained.get("nsp"):
        source = str(trained.get("source", "its --from model"))
        negative = _PRETRAIN_NEGATIVES.get(str(trained.get("nsp_negatives")), "a sentence that is not the next one")
        return ClsOrigin(
            NSP,
            f"{label} [CLS] was trained by next-sentence prediction: bertprobe pretrain --nsp, continuing from "
            f"{source}, trained its NSP head to read [CLS] (through the pooler) and tell whether sentence B really "
            f"followed sentence A, half the time true, half the time {negative}. What had trained [CLS] in {source} "
            "before that is not recorded in this checkpoint.",
        )
    if "nsp" in heads:
        return ClsOrigin(
            NSP,
            f"{label} [CLS] was trained by next-sentence prediction: in pretraining its NSP head read [CLS] "
            "(through the pooler) to tell whether sentence B really followed sentence A, half the time true, "
            "half the time a random sentence. That is the only task that ever trained it.",
        )
    bundled = BUNDLED_TRAINING.get(name)
    if bundled:
        return ClsOrigin(
            UNKNOWN,
            f"{label} checkpoint keeps no NSP head, and {bundled}: whatever its [CLS] learnt before is untested here.",
        )
    return ClsOrigin(
        UNKNOWN,
        f"{label} checkpoint keeps no NSP head, so it does not show what its [CLS] was trained for "
        "(BERT checkpoints that were trained with NSP, such as bert-base-uncased, keep it).",
    )


def of(lm: Any) -> ClsOrigin:
    """``describe`` for a loaded model."""
    return describe(lm.name, lm.path, lm.config, set(lm.heads))
