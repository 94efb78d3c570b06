"""``bertprobe cls-train`` and ``bertprobe cls-predict``: a linear probe on BERT's [CLS] vector."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from bertprobe.cli.app import command
from bertprobe.cli.learner import DetailsOpt, ExplainOpt
from bertprobe.cli.options import LAYER_HELP, Common, count, layer_option, parse_c, real
from bertprobe.datasets import TASKS
from bertprobe.features import POOLINGS

# Typer shows an Enum's values as the option's choices.
Task = Enum("Task", {name: name for name in TASKS}, type=str)
Pooling = Enum("Pooling", {name: name for name in POOLINGS}, type=str)

LayerOpt = Annotated[int | None, layer_option(LAYER_HELP + " Default: the last.")]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="Texts per forward pass.", **count(1))]


@command("cls-train")
def cls_train_cli(
    task: Annotated[Task | None, typer.Option("--task", help="A known task (GLUE SST-2).", show_default=False)] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Folder with the task's GLUE files (train.tsv, dev.tsv).", show_default=False),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Your labelled file: .csv, .tsv or .jsonl with a text and a label column.",
            show_default=False,
        ),
    ] = None,
    eval_data: Annotated[
        Path | None,
        typer.Option(
            "--eval-data", help="Labelled file to evaluate on (else --test-size of --data).", show_default=False
        ),
    ] = None,
    text_column: Annotated[
        str | None,
        typer.Option(
            "--text-column",
            help="Text column of --data (default: the first of text, sentence, review, content).",
            show_default=False,
        ),
    ] = None,
    label_column: Annotated[
        str | None,
        typer.Option(
            "--label-column",
            help="Label column of --data (default: the first of label, sentiment, class, target).",
            show_default=False,
        ),
    ] = None,
    test_size: Annotated[
        float,
        typer.Option(
            "--test-size",
            help="Share of --data held out for evaluation (stratified, seeded).",
            **real(0, 1, low_open=True, high_open=True),
        ),
    ] = 0.2,
    layer: LayerOpt = None,
    pool: Annotated[
        Pooling, typer.Option("--pool", help="Sentence vector: [CLS], mean or max over tokens, or BERT's tanh pooler.")
    ] = Pooling.cls,
    c: Annotated[
        float | None,
        typer.Option(
            "--C",
            parser=parse_c,
            metavar="<float|auto>",
            help="Inverse L2 strength of the logistic regression, or 'auto' (cross-validated).",
        ),
    ] = 1.0,
    max_train: Annotated[
        int | None,
        typer.Option(
            "--max-train", help="Train on a seeded stratified sample of N rows.", show_default=False, **count(1)
        ),
    ] = None,
    max_length: Annotated[
        int | None,
        typer.Option(
            "--max-length",
            **count(3),
            help="Truncate texts to N word pieces (default: the model's limit).",
            show_default=False,
        ),
    ] = None,
    batch_size: BatchOpt = 32,
    sweep: Annotated[
        bool,
        typer.Option("--sweep", help="Score every layer x pooling from one extraction, with a random-encoder control."),
    ] = False,
    control: Annotated[
        bool | None,
        typer.Option(
            "--control/--no-control",
            help="Also train the probe on a randomly initialised encoder (default: on with --sweep).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Save the probe here (probe.safetensors + probe.json).", show_default=False),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Extract features again instead of reading the cache.")
    ] = False,
    explain: ExplainOpt = False,
    details: DetailsOpt = False,
    *,
    common: Common,
) -> None:
    """Train a logistic-regression probe on frozen BERT sentence vectors and show how good it is.

    Example: bertprobe cls-train --data examples/sentiment.csv --model minilm --sweep
    """
    from bertprobe import render
    from bertprobe.api import note_special_tokens, training_split
    from bertprobe.probe import cls_train

    split = training_split(
        task.value if task is not None else None,
        data_dir,
        data,
        eval_data,
        text_column,
        label_column,
        test_size,
        max_train,
        common.seed,
        common.offline,
    )
    lm = common.load("encoder")
    result = cls_train(
        lm,
        split,
        layer=layer,
        pooling=pool.value,
        C=c,
        max_length=max_length,
        batch_size=batch_size,
        sweep=sweep,
        control=sweep if control is None else control,
        seed=common.seed,
        use_cache=not no_cache,
        out=out,
        task=task.value if task is not None else None,
        progress=lambda description: render.progress_bar(description, enabled=not common.json),
    )
    from bertprobe import cls_origin

    result.cls_origin = cls_origin.of(lm)
    note_special_tokens(result, lm, [*split.train.texts, *split.eval.texts])
    for message in result.notices:
        render.notice(message)
    render.show(result, json=common.json, seed=common.seed, explain=explain, details=details)


@command("cls-predict")
def cls_predict_cli(
    probe_dir: Annotated[Path, typer.Argument(help="Directory a probe was saved to (cls-train --out).")],
    texts: Annotated[list[str], typer.Argument(help="Texts to classify.")],
    layer: LayerOpt = None,
    pool: Annotated[
        Pooling | None, typer.Option("--pool", help="Checked against the probe's pooling.", show_default=False)
    ] = None,
    batch_size: BatchOpt = 32,
    explain: ExplainOpt = False,
    details: DetailsOpt = False,
    *,
    common: Common,
) -> None:
    """Label texts with a saved probe and show each class's probability (auto --model: the probe's own).

    Example: bertprobe cls-predict runs/sentiment "a gripping, funny film" "a tedious mess"
    """
    from bertprobe import render
    from bertprobe.api import note_special_tokens, probe_model
    from bertprobe.probe import load_probe, predict

    probe = load_probe(probe_dir)
    probe.check_reading(layer, pool.value if pool is not None else None)
    common.model, common.revision = probe_model(common.model, common.revision, probe)
    lm = common.load("encoder")
    result = note_special_tokens(predict(lm, probe, texts, batch_size=batch_size), lm, texts)
    for message in result.notices:
        render.notice(message)
    render.show(result, json=common.json, seed=common.seed, explain=explain, details=details)
