"""fill-mask: scores equal transformers' own pipeline; errors are one line and exit 1."""

from __future__ import annotations

import json

import pytest

TEXTS = [
    "The cat sat on the [MASK].",
    "Paris is the [MASK] of France, and Berlin is the [MASK] of Germany.",
    "I can't believe it's [MASK]!",
]


@pytest.fixture(scope="module")
def pipeline_for():
    from transformers import pipeline

    cache = {}

    def get(path):
        if path not in cache:
            cache[path] = pipeline("fill-mask", model=str(path), device="cpu")
        return cache[path]

    return get


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("model_fixture", ["mlm_path", "tiny_pretraining_path"])
def test_scores_equal_transformers_pipeline(cli, pipeline_for, request, text, model_fixture):
    path = request.getfixturevalue(model_fixture)
    code, stdout, _ = cli("fillmask", text, "--model", path, "--top-k", 7, "--json")
    assert code == 0
    ours = json.loads(stdout)["masks"]
    theirs = pipeline_for(path)(text, top_k=7)
    if text.count("[MASK]") == 1:
        theirs = [theirs]
    assert len(ours) == len(theirs) == text.count("[MASK]")
    for mine, ref in zip(ours, theirs, strict=True):
        assert [p["token_id"] for p in mine["predictions"]] == [r["token"] for r in ref]
        assert [p["token_str"] for p in mine["predictions"]] == [r["token_str"] for r in ref]
        for p, r in zip(mine["predictions"], ref, strict=True):
            assert p["score"] == pytest.approx(r["score"], abs=1e-5)


def test_json_document_has_the_promised_fields(cli, mlm_path):
    code, stdout, _ = cli("fillmask", "The [MASK] sat on the [MASK].", "-m", mlm_path, "-k", 3, "--json")
    assert code == 0
    doc = json.loads(stdout)  # stdout holds the JSON document and nothing else
    assert doc["text"] == "The [MASK] sat on the [MASK]."
    assert doc["model"] == str(mlm_path) and "revision" in doc and doc["seed"] == 0
    assert [m["position"] for m in doc["masks"]] == [2, 6]
    for mask in doc["masks"]:
        preds = mask["predictions"]
        assert len(preds) == 3
        assert {"token", "token_id", "score"} <= preds[0].keys()
        assert preds[0]["score"] >= preds[1]["score"] >= preds[2]["score"]
    first = [m["predictions"][0]["token_str"] for m in doc["masks"]]
    assert doc["filled"] == f"The {first[0]} sat on the {first[1]}."


def test_table_shows_each_mask_and_the_filled_sentence(cli, mlm_path):
    code, stdout, _ = cli("fillmask", "The [MASK] sat on the [mask].", "-m", mlm_path, "-k", 4)
    assert code == 0
    assert "mask 1 of 2" in stdout and "mask 2 of 2" in stdout
    assert "top-1 fill:" in stdout
    assert stdout.count("│    4 │") == 2  # four ranks per mask


def test_model_tokens_like_unused_survive_rich_markup(cli, tiny_pretraining_path):
    # A random model predicts odd pieces such as [unused12]; Rich would swallow them as markup.
    code, stdout, _ = cli("fillmask", "a [MASK] b", "-m", tiny_pretraining_path, "-k", 50, "--json")
    tokens = [p["token_str"] for p in json.loads(stdout)["masks"][0]["predictions"]]
    code, table, _ = cli("fillmask", "a [MASK] b", "-m", tiny_pretraining_path, "-k", 50)
    assert code == 0
    for token in tokens:
        assert token in table


def test_missing_mask_is_one_line_with_an_example(cli, mlm_path):
    code, stdout, stderr = cli("fillmask", "The cat sat on the mat.", "-m", mlm_path)
    assert code == 1 and stdout == ""
    lines = stderr.strip().splitlines()
    assert lines[0].startswith("error: no mask token")
    assert "hint:" in lines[-1] and "[MASK]" in lines[-1]
    assert "Traceback" not in stderr


def test_text_longer_than_the_model_reads(cli, tiny_pretraining_path):
    code, _, stderr = cli("fillmask", "word " * 80 + "[MASK]", "-m", tiny_pretraining_path)
    assert code == 1
    assert "reads at most 64" in stderr


def test_encoder_only_checkpoint_is_refused_not_filled_with_noise(cli, minilm_path):
    for spec in ("minilm", minilm_path):
        code, _, stderr = cli("fillmask", "The cat sat on the [MASK].", "-m", spec)
        assert code == 1
        assert "has no MLM head" in stderr and "random" in stderr


def test_unknown_model_and_offline_hub_id(cli, tmp_path):
    code, _, stderr = cli("fillmask", "a [MASK]", "-m", tmp_path)
    assert code == 1 and "no config.json" in stderr
    code, _, stderr = cli("fillmask", "a [MASK]", "-m", "no-such-org/no-such-bert", "--offline")
    assert code == 1 and "not in the local Hugging Face cache" in stderr and "hint:" in stderr
    code, _, stderr = cli("fillmask", "a [MASK]", "-m", "not a model !")
    assert code == 1 and "no model directory or hub id" in stderr
    code, _, stderr = cli("fillmask", "a [MASK]", "-m", "")
    assert code == 1 and "--model is empty" in stderr


def test_auto_without_bert_base_says_what_to_do(cli, monkeypatch):
    from bertprobe import models

    monkeypatch.setattr("bertprobe.models._cached_on_hub", lambda repo: False)
    monkeypatch.setattr("bertprobe.models.BUNDLED", {"minilm": models.BUNDLED["minilm"]})  # no masked LM
    code, _, stderr = cli("fillmask", "a [MASK]", "--offline")
    assert code == 1
    assert "bert-base-uncased" in stderr and "--model DIR" in stderr


def test_auto_offline_falls_back_to_the_shipped_masked_lm(cli, monkeypatch):
    monkeypatch.setattr("bertprobe.models._cached_on_hub", lambda repo: False)
    code, stdout, stderr = cli("fillmask", "The cat sat on the [MASK].", "--offline", "--json")
    assert code == 0
    assert json.loads(stdout)["model"] == "minilm-mlm"
    assert "Using offline model minilm-mlm" in stderr and "weaker than bert-base-uncased" in stderr


def test_absent_gpu_is_a_user_error(cli, mlm_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, _, stderr = cli("fillmask", "a [MASK]", "-m", mlm_path, "--device", "cuda")
    assert code == 1 and "no CUDA GPU" in stderr


def test_env_model_is_used_by_auto(cli, mlm_path, monkeypatch):
    monkeypatch.setenv("BERTPROBE_MODEL", str(mlm_path))
    code, stdout, _ = cli("fillmask", "a [MASK] b", "--json")
    assert code == 0 and json.loads(stdout)["model"] == str(mlm_path)


def _context_result(left: float, right: float, both: float):
    import math

    from bertprobe.fillmask import ContextResult, ContextView, TargetScore

    def view(context, p):
        target = TargetScore("dog", 1, p, math.log(p), [])
        return ContextView(context, "", [], 1, [], [target])

    return ContextResult("m", None, "bundled", "The [MASK] barked.", "single", 5, None, 4, 10, ["dog"], "targets",
                         [view("left", left), view("right", right), view("both", both)])  # fmt: skip


@pytest.mark.parametrize(
    ("left", "right", "both", "said", "not_said"),
    [
        # equal sides: neither points "1x more strongly" than the other
        (0.02, 0.02, 0.5, "the two sides point to it about equally", "more strongly"),
        # 1.4x is not rounded to "1x" either
        (0.014, 0.01, 0.5, "point to it 1.4x as strongly as those to the right", "1x"),
        # both sides give LESS than one side alone: not "as much as both"
        (0.4, 0.01, 0.1, "less than one side alone gives it", "says as much as both"),
    ],
)
def test_context_reading_says_what_the_numbers_show(left, right, both, said, not_said):
    from bertprobe.render.fillmask import context_readings

    reading = " ".join(context_readings(_context_result(left, right, both)))
    assert said in reading and not_said not in reading


def test_adjacent_masks_fill_as_the_separate_words_the_model_read(cli):
    from bertprobe.fillmask import splice

    text = "a [MASK][MASK]."
    spans = [(2, 8), (8, 14)]
    assert splice(text, spans, ["new", "table"], [True, True]) == "a new table."  # two words, as read
    assert splice(text, spans, ["carpet", "##ing"], [True, False]) == "a carpeting."  # one word's pieces
    assert splice(text, spans, ["new", " table"], [True, True]) == "a new table."  # BPE carries its space
    for decode in ("independent", "joint"):
        code, stdout, stderr = cli("fillmask", "The cat sat on the [MASK][MASK] today.", "--decode", decode,
                                   "--json", "-m", "tiny-mlm")  # fmt: skip
        assert code == 0, stderr
        doc = json.loads(stdout)
        fills = [(doc["filled"], [m["predictions"][0]["token_str"] for m in doc["masks"]])]
        fills += [(fill["filled"], fill["words"]) for fill in (doc.get("joint") or {}).get("completions", [])]
        assert len(fills) > (decode == "joint")
        for filled, (first, second) in fills:
            between = "" if second.startswith("##") else " "  # WordPiece: only ## continues a word
            assert filled == f"The cat sat on the {first}{between}{second.removeprefix('##')} today."
        code, table, _ = cli("fillmask", "The cat sat on the [MASK][MASK] today.", "--decode", decode, "-m",
                             "tiny-mlm")  # fmt: skip
        assert f"top-1 fill: {doc['filled']}" in " ".join(table.split())


def test_context_views_keep_the_space_a_mask_token_absorbs(cli, family_path):
    # XLM-R's <mask> takes in the space before it: its span is " <mask>". Cut at that span, the views read
    # "the river<mask>", and a target written there was scored as the end of "riverbank", not as "bank".
    path = family_path("xlm-roberta")
    text = "the river <mask> is muddy"
    code, stdout, stderr = cli("fillmask", text, "--targets", "bank,cat", "-m", path, "--json")
    assert code == 0, stderr
    plain = {t["word"]: t for t in json.loads(stdout)["targets"][0]["targets"]}
    code, stdout, stderr = cli(
        "fillmask", text, "--context", "left,both", "--targets", "bank,cat", "-m", path, "--json"
    )
    assert code == 0, stderr
    left, both = json.loads(stdout)["views"]
    assert both["text"] == text and left["text"] == "the river <mask>"
    for target in both["targets"]:  # the both-sides view reads the text as given: the same scores
        assert [p["token_id"] for p in target["pieces"]] == [p["token_id"] for p in plain[target["word"]]["pieces"]]
        assert target["log_prob"] == pytest.approx(plain[target["word"]]["log_prob"], abs=1e-5)


@pytest.mark.parametrize(
    ("kind", "text"), [("distilbert", "the river [MASK] is muddy"), ("roberta", "a bank is [MASK]")]
)
def test_context_follows_a_prediction_whose_probability_it_shows(cli, family_path, kind, text):
    # These random models put "##dly" (a word's end, after a space) or a lone "Ġ" first: written in the slot,
    # "dly" is read as "dl ##y", and "" is no word at all. The word followed must be the prediction it names.
    code, stdout, stderr = cli("fillmask", text, "--context", "all", "-m", family_path(kind), "--json")
    assert code == 0, stderr
    doc = json.loads(stdout)
    both = next(v for v in doc["views"] if v["context"] == "both")
    rank = int(doc["tracked_from"].removeprefix("top-").split()[0])
    assert doc["tracked_from"].endswith(" with both sides")
    named = both["predictions"][rank - 1]
    assert doc["tracked"] == [named["token_str"].strip().removeprefix("##")]
    assert [p["token_id"] for p in both["targets"][0]["pieces"]] == [named["token_id"]]
    assert both["targets"][0]["score"] == pytest.approx(named["score"], rel=1e-5)


def test_the_input_summary_cell_shows_context_probabilities_with_the_tables_digits():
    # The --input summary rounded 0.0036 to "0.004", while the table and its 9.3x ratio use 0.0036.
    from bertprobe.render.jsonl import _context

    assert _context(_context_result(0.00043, 0.0036, 0.2)) == "p('dog'): left 4.3e-04, right 0.0036, both 0.200"


def test_a_small_prediction_probability_is_not_printed_as_zero():
    # Far down a top-k list a word keeps a chance of ~3e-5: "0.0000" would read as impossible, "1.0000" as certain.
    import io

    from rich.console import Console
    from rich.text import Text

    from bertprobe.mlm import Prediction
    from bertprobe.render.fillmask import _prediction_table

    table = _prediction_table(Text("t"), [Prediction("a", 1, 0.99996, "a"), Prediction("b", 2, 3e-5, "b")])
    console = Console(file=io.StringIO(), width=100)
    console.print(table)
    shown = [line.split("│")[3].strip() for line in console.file.getvalue().splitlines() if line.startswith("│")]
    assert float(shown[1]) > 0 and float(shown[0]) < 1, shown


def test_a_text_in_a_batch_gets_what_it_gets_alone():
    # fillmask --input pads many texts together (right padding, attention mask): a much longer or shorter
    # neighbour may move the last float32 digits of a text's probabilities, never its ranking.
    from bertprobe import models
    from bertprobe.fillmask import fill_masks

    lm = models.load("minilm-mlm", head="mlm", device="cpu")
    texts = ["The cat sat on the [MASK].", "The [MASK] chased the [MASK] across the garden."]
    longer = " ".join(["The committee reviewed every proposal in detail."] * 20) + " It was [MASK]."
    batched = fill_masks(lm, [longer, *texts, "[MASK]."], 10)[1:3]
    for text, together in zip(texts, batched, strict=True):
        alone = fill_masks(lm, [text], 10)[0]
        for mask_alone, mask_together in zip(alone.masks, together.masks, strict=True):
            assert [p.token for p in mask_together.predictions] == [p.token for p in mask_alone.predictions]
            for a, b in zip(mask_alone.predictions, mask_together.predictions, strict=True):
                assert b.score == pytest.approx(a.score, rel=1e-5)
