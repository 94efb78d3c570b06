"""What a learner sees: one-sided contexts, BERT's 80/10/10 actions, what trained [CLS], plain readings.

Numbers are checked against plain transformers calls; readings against the numbers they read out.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bertprobe import cls_origin
from bertprobe.models import BUNDLED

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BARK = "The [MASK] barked at the mailman."


@pytest.fixture(scope="module")
def tiny_mlm_reference():
    """Plain transformers on the shipped tiny-mlm: P(token) at the mask for a list of input ids."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    path = BUNDLED["tiny-mlm"].path()
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForMaskedLM.from_pretrained(str(path), dtype=torch.float32).eval()

    def probabilities(ids: list[int]) -> torch.Tensor:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0]
        return logits[ids.index(tokenizer.mask_token_id)].softmax(-1)

    return tokenizer, probabilities


# ---------------------------------------------------------------------------- fillmask --context


def test_context_views_remove_the_other_side_and_equal_transformers(cli, tiny_mlm_reference):
    tokenizer, probabilities = tiny_mlm_reference
    code, stdout, stderr = cli("fillmask", BARK, "-m", "tiny-mlm", "--context", "all", "--targets", "dog", "--json")
    assert code == 0, stderr
    doc = json.loads(stdout)
    views = {v["context"]: v for v in doc["views"]}
    assert list(views) == ["left", "right", "both"] and doc["tracked"] == ["dog"]
    full = tokenizer(BARK)["input_ids"]
    mask = full.index(tokenizer.mask_token_id)
    expected_ids = {
        "left": full[: mask + 1],  # no words after the mask, and no closing [SEP]
        "right": [full[0], *full[mask:]],  # [CLS], then the mask and everything after it
        "both": full,
    }
    dog = tokenizer.convert_tokens_to_ids("dog")
    for context, ids in expected_ids.items():
        view = views[context]
        assert view["tokens"] == tokenizer.convert_ids_to_tokens(ids)
        reference = probabilities(ids)
        assert view["targets"][0]["score"] == pytest.approx(float(reference[dog]), rel=1e-4, abs=1e-7)
        top = reference.topk(5)
        assert [p["token_id"] for p in view["predictions"]] == top.indices.tolist()
        assert [p["score"] for p in view["predictions"]] == pytest.approx(top.values.tolist(), abs=1e-5)
    assert "removed" in doc["definition"]


def test_context_table_reads_out_which_side_does_the_work(cli):
    code, table, _ = cli("fillmask", BARK, "-m", "tiny-mlm", "--context", "all", "--targets", "dog")
    assert code == 0
    _, stdout, _ = cli("fillmask", BARK, "-m", "tiny-mlm", "--context", "all", "--targets", "dog", "--json")
    score = {v["context"]: v["targets"][0]["score"] for v in json.loads(stdout)["views"]}
    squashed = " ".join(table.split())
    stronger = "right" if score["right"] > score["left"] else "left"
    assert f"the words to the {stronger} of the mask point to it" in squashed
    assert "left context only" in table and "right context only" in table and "both sides (BERT)" in table
    assert "BERT reads both directions at once" in squashed


def test_context_follows_the_original_word_in_word_mode(cli):
    code, stdout, _ = cli(
        "fillmask", "I saw an ostrich at the zoo.", "-m", "tiny-mlm", "--mask-word", "ostrich", "--context",
        "left,both", "--json",
    )  # fmt: skip
    assert code == 0
    doc = json.loads(stdout)
    assert doc["tracked_from"] == "original" and doc["tracked"] == ["ostrich"] and doc["masked"] == "ostrich"
    assert [v["context"] for v in doc["views"]] == ["left", "both"]
    for view in doc["views"]:
        target = view["targets"][0]
        assert len(target["pieces"]) > 1  # scored whole, piece by piece
        product = 1.0
        for piece in target["pieces"]:
            product *= piece["probability"]
        assert target["score"] == pytest.approx(product, rel=1e-6)
        assert "ostrich" not in view["text"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["The [MASK] chased the [MASK].", "--context", "all"], "the sides of one mask; the text has 2"),
        (["The [MASK] sat.", "--context", "up"], "unknown --context up"),
        (["The cat sat.", "--mode", "bert", "--context", "all"], "--context does not apply to --mode bert"),
        (["The [MASK] sat.", "--context", "all", "--show-cls"], "--show-cls does not apply with --context"),
    ],
)
def test_context_user_errors_are_one_line(cli, args, message):
    code, stdout, stderr = cli("fillmask", *args, "-m", "tiny-mlm")
    assert code == 1 and stdout == ""
    assert message in stderr and "Traceback" not in stderr


# ---------------------------------------------------------------------------- --mode bert examples


def test_bert_mode_shows_every_action_from_all_samples(cli):
    text = "The quick brown fox jumps over the lazy dog."
    code, stdout, _ = cli("fillmask", text, "-m", "tiny-mlm", "--mode", "bert", "--samples", 30, "--json")
    assert code == 0
    doc = json.loads(stdout)
    masks = doc["masks"]
    chosen = [masks[i] for i in doc["examples"]]
    for action in ("mask", "random", "keep"):
        present = [m for m in masks if m["action"] == action]
        picked = [m for m in chosen if m["action"] == action]
        assert len(picked) == min(3, len(present))
        # One per sample first: as many different samples as the action appears in, up to three.
        assert len({m["sample"] for m in picked}) == min(3, len({m["sample"] for m in present}))
    assert {m["action"] for m in chosen} == {"mask", "random", "keep"}  # 30 samples hold all three
    code, table, _ = cli("fillmask", text, "-m", "tiny-mlm", "--mode", "bert", "--samples", 30)
    assert "examples of each action, from all 30 samples" in table
    assert "random" in table and "kept" in table
    squashed = " ".join(table.split())
    assert "Why not always [MASK]?" in squashed and "cannot rely on seeing it" in squashed
    recovered = {r["action"]: r for r in doc["summary"]}
    assert f"{100 * recovered['keep']['top1']:.0f}% of the {recovered['keep']['count']} kept" in squashed


def test_single_bert_sample_says_how_to_see_the_rare_actions(cli):
    code, table, _ = cli("fillmask", "The cat sat on the mat.", "-m", "tiny-mlm", "--mode", "bert")
    assert code == 0
    squashed = " ".join(table.split())
    assert "selected positions" in table
    assert "add --samples 20 to see them" in squashed


# ---------------------------------------------------------------------------- what trained [CLS]


def test_cls_origin_is_read_from_the_checkpoint(tiny_pretraining_path, tiny_encoder_path, minilm_path):
    from bertprobe.models import checkpoint_heads

    nsp = cls_origin.describe(
        "tiny", tiny_pretraining_path, {"model_type": "bert"}, checkpoint_heads(tiny_pretraining_path)
    )
    assert nsp.objective == cls_origin.NSP and "next-sentence prediction" in nsp.note
    plain = cls_origin.describe("enc", tiny_encoder_path, {"model_type": "bert"}, checkpoint_heads(tiny_encoder_path))
    assert plain.objective == cls_origin.UNKNOWN and "keeps no NSP head" in plain.note
    config = json.loads((minilm_path / "config.json").read_text())
    minilm = cls_origin.describe("minilm", minilm_path, config, checkpoint_heads(minilm_path))
    assert minilm.objective == cls_origin.NONE
    assert "never trained with next-sentence prediction" in minilm.note and "mean of all its tokens" in minilm.note
    roberta = cls_origin.describe("r", tiny_encoder_path, {"model_type": "roberta"}, {"mlm"})
    assert roberta.objective == cls_origin.NONE and "RoBERTa dropped next-sentence prediction" in roberta.note
    albert = cls_origin.describe("a", tiny_encoder_path, {"model_type": "albert"}, {"mlm"})
    assert albert.objective == cls_origin.SOP


def test_show_cls_names_what_trained_cls(cli):
    code, table, _ = cli("fillmask", "The cat sat on the [MASK].", "-m", "tiny-mlm", "--show-cls")
    assert code == 0
    squashed = " ".join(table.split())
    assert "Read off [CLS] instead" in squashed and "tiny-mlm's checkpoint keeps no NSP head" in squashed
    _, stdout, _ = cli("fillmask", "The cat sat on the [MASK].", "-m", "tiny-mlm", "--show-cls", "--json")
    assert json.loads(stdout)["cls_origin"]["objective"] == cls_origin.UNKNOWN


def test_nsp_reading_matches_its_accuracy(cli, tiny_pretraining_path):
    story = EXAMPLES / "story.txt"
    code, stdout, stderr = cli("nsp", "--shuffle", story, "-m", tiny_pretraining_path, "--json")
    assert code == 0, stderr
    doc = json.loads(stdout)
    assert doc["cls_origin"]["objective"] == cls_origin.NSP
    assert len(doc["pairs"]) == len(story.read_text().splitlines()) - 1
    code, table, _ = cli("nsp", "--shuffle", story, "-m", tiny_pretraining_path, "--explain")
    squashed = " ".join(table.split())
    accuracy = doc["accuracy"]
    assert f"The NSP head was right on {accuracy:.0%} of {len(doc['pairs'])} pairs" in squashed
    verdict = "carries what" if accuracy >= 0.7 else "no better than guessing" if accuracy <= 0.6 else "somewhat"
    assert verdict in squashed
    assert "trained by next-sentence prediction" in squashed and "P(B follows A): the NSP head's" in squashed


def test_nsp_single_pair_reading(cli, tiny_pretraining_path):
    args = ("nsp", "I was hungry.", "So I made a sandwich.", "-m", tiny_pretraining_path)
    _, stdout, _ = cli(*args, "--json")
    p = json.loads(stdout)["pairs"][0]["is_next_probability"]
    _, table, _ = cli(*args)
    squashed = " ".join(table.split())
    assert f"P = {p:.2f}: the NSP head, reading only [CLS]," in squashed
    assert ("takes B for the sentence that follows A" in squashed) == (p >= 0.5)


# ---------------------------------------------------------------------------- readings of other commands


def test_attention_reading_names_the_heaviest_special_layer(cli, minilm_path):
    text = "The cat sat on the mat."
    _, stdout, _ = cli("attention", text, "-m", "minilm", "--json")
    layers = json.loads(stdout)["layers"]
    heaviest = max(layers, key=lambda row: row["special_share"])
    code, table, _ = cli("attention", text, "-m", "minilm", "--explain")
    assert code == 0
    squashed = " ".join(table.split())
    assert f"In layer {heaviest['layer']}, {heaviest['special_share']:.0%} of all attention lands on" in squashed
    assert "entropy how spread out" in squashed


def test_faithfulness_keeps_significant_digits():
    from bertprobe.render.attribute import signif

    assert signif(3.14159e-6) == "+3.14e-06"
    assert signif(-0.012345) == "-0.0123"
    assert signif(0.0) == "+0.0000"
    assert signif(2.5e-5, sign=False) == "2.50e-05"
    assert signif(0.25, sign=False) == "0.2500"


def test_offline_hint_for_a_missing_hub_model_names_the_bundled_masked_lm(cli):
    code, stdout, stderr = cli("fillmask", "The cat sat on the [MASK].", "--model", "bert-base-uncased", "--offline")
    if code == 0:
        pytest.skip("bert-base-uncased is in this machine's Hugging Face cache")
    assert stdout == "" and "not in the local Hugging Face cache" in stderr
    hint = " ".join(stderr.split())
    assert "--model minilm-mlm (masked LM" in hint and "--model minilm (encoder only" in hint


def test_nsp_pairs_without_truth_count_the_judgements(cli, tiny_pretraining_path, tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("sentence_a,sentence_b\nI was hungry.,So I ate.\nIt rained.,The cat is blue.\nHi.,Hello.\n")
    _, stdout, _ = cli("nsp", "--pairs", path, "-m", tiny_pretraining_path, "--json")
    judged = sum(p["predicted_next"] for p in json.loads(stdout)["pairs"])
    code, table, _ = cli("nsp", "--pairs", path, "-m", tiny_pretraining_path)
    assert code == 0
    assert f"takes B for A's next sentence in {judged} of 3 pairs" in " ".join(table.split())


def test_context_without_targets_follows_the_both_sides_top_word(cli):
    code, stdout, _ = cli("fillmask", "The cat sat on the [MASK].", "-m", "tiny-mlm", "--context", "all", "--json")
    assert code == 0
    doc = json.loads(stdout)
    both = next(v for v in doc["views"] if v["context"] == "both")
    assert doc["tracked_from"] == "top-1 with both sides"
    assert doc["tracked"] == [both["predictions"][0]["token_str"].strip()]
    assert both["targets"][0]["score"] == pytest.approx(both["predictions"][0]["score"], rel=1e-5)


def test_context_over_many_texts_summarises_each_row(cli, tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text(f"{BARK}\nThe cat sat on the [MASK].\n")
    code, table, stderr = cli("fillmask", "--input", path, "--context", "all", "--targets", "dog", "-m", "tiny-mlm")
    assert code == 0, stderr
    _, single, _ = cli("fillmask", BARK, "--context", "all", "--targets", "dog", "-m", "tiny-mlm", "--json")
    views = {v["context"]: v["targets"][0]["score"] for v in json.loads(single)["views"]}
    assert f"p('dog'): left {views['left']:.1e}, right {views['right']:.4f}" in " ".join(table.split())


# ---------------------------------------------------------------------------- cls-train readings


def _probe_result(correct: int, size: int, majority: int, control: int | None = None):
    """A binary probe result on ``size`` eval texts: the probe, the majority class and the control get so many right."""
    from bertprobe.probe import Baseline, DataSummary, Metrics, ProbeResult

    def metrics(right: int) -> Metrics:
        return Metrics(accuracy=right / size, macro_f1=right / size, per_class=[], confusion=[])

    half = {"negative": size // 2, "positive": size - size // 2}
    return ProbeResult(
        model="m", revision=None, source="local", fingerprint="f", task=None,
        data=DataSummary("d.csv", 100, size, {"negative": 50, "positive": 50}, half),
        labels=["negative", "positive"], layer=6, num_layers=6, pooling="cls", max_length=128, truncated=0, C=1.0,
        c_search=None, metrics=metrics(correct), baseline=Baseline("negative", majority / size, 0.3),
        control=None if control is None else metrics(control), sweep=[], cache_hits=0, cache_misses=0,
        cache_rebuilt=[], seconds={},
    )  # fmt: skip


def test_probe_reading_does_not_claim_a_lead_that_luck_explains():
    from bertprobe.render import luck
    from bertprobe.render.probe import readings

    # 6 of 8 against a 50% baseline: luck gives that 37 times in 256, so it is no finding.
    assert luck(6, 8, 0.5) == pytest.approx(37 / 256)
    small = " ".join(readings(_probe_result(6, 8, 4)))
    assert "carries enough of the label" not in small
    assert "does not show that the vector carries the label" in small and "14% of the time" in small
    assert "±35%" in small  # not "a few points": one text alone is 12.5 points
    # The same 75% against 50% on 400 texts is far beyond luck.
    large = " ".join(readings(_probe_result(300, 400, 200)))
    assert "carries enough of the label for a linear probe to read it off" in large and "luck alone" not in large


def test_probe_reading_warns_when_another_constant_answer_does_as_well():
    import dataclasses

    from bertprobe.render.probe import readings

    # Trained on a 50/50 mix, evaluated on 300 'positive' of 400: the probe's 75% beats the training
    # majority ('negative', 25%) by far, but always answering 'positive' would score 75% too.
    result = _probe_result(300, 400, 100)
    shifted = dataclasses.replace(
        result, data=dataclasses.replace(result.data, eval_counts={"negative": 100, "positive": 300})
    )
    said = " ".join(readings(shifted))
    assert "always answering 'positive' would score 75%, as much as the probe" in said
    assert "as much as the probe" not in " ".join(readings(result))  # half and half: 50% is no match for 75%


def test_probe_reading_credits_pretraining_only_beyond_the_untrained_encoder():
    from bertprobe.render.probe import readings

    level = " ".join(readings(_probe_result(300, 400, 200, control=296)))
    assert "does not show that pretraining put the label into the vector" in level and "within luck" in level
    assert "are what pretraining put into the vector" not in level
    ahead = " ".join(readings(_probe_result(300, 400, 200, control=220)))
    assert "the 20 points above it are what pretraining put into the vector" in ahead
    behind = " ".join(readings(_probe_result(300, 400, 200, control=340)))
    assert "at least as much" in behind and "are what pretraining put into the vector" not in behind


def test_cls_origin_names_a_fine_tune_whatever_the_family(tiny_encoder_path, tmp_path):
    # distilbert-base-uncased-finetuned-sst-2-english: its [CLS] was trained, for sentiment.
    sst2 = {
        "model_type": "distilbert",
        "architectures": ["DistilBertForSequenceClassification"],
        "id2label": {"0": "NEGATIVE", "1": "POSITIVE"},
    }
    tuned = cls_origin.describe("d", tiny_encoder_path, sst2, set())
    assert tuned.objective == cls_origin.FINE_TUNED
    assert "no sentence-level task" not in tuned.note and "'NEGATIVE', 'POSITIVE'" in tuned.note
    roberta = {"model_type": "roberta", "architectures": ["RobertaForSequenceClassification"]}
    assert cls_origin.describe("r", tiny_encoder_path, roberta, {"pooler"}).objective == cls_origin.FINE_TUNED
    # A sentence-transformers model on bert-base: its base was trained with NSP, so "never" would be false.
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "modules.json").write_text(json.dumps([{"path": "1_Pooling", "type": "models.Pooling"}]))
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    bert_st = {"model_type": "bert", "_name_or_path": "bert-base-uncased"}
    sentence = cls_origin.describe("s", tmp_path, bert_st, set())
    assert (
        "never trained with next-sentence prediction" not in sentence.note and "sentence-transformers" in sentence.note
    )
    # ... and one on RoBERTa was fine-tuned at the sentence level: not "trained by no sentence-level task".
    roberta_st = cls_origin.describe("s", tmp_path, {"model_type": "roberta"}, set())
    assert "sentence-transformers" in roberta_st.note and "no sentence-level task" not in roberta_st.note


def test_cls_origin_of_an_electra_with_a_masked_lm_head_does_not_call_it_a_replaced_token_detector(tiny_encoder_path):
    # google/electra-small-generator: trained by masked-LM (it proposes the replacements), not to spot them.
    generator = {"model_type": "electra", "architectures": ["ElectraForMaskedLM"]}
    said = cls_origin.describe("g", tiny_encoder_path, generator, {"mlm"})
    assert said.objective == cls_origin.NONE and "masked-LM" in said.note
    assert "is trained to spot replaced tokens" not in said.note
    discriminator = {"model_type": "electra", "architectures": ["ElectraForPreTraining"]}
    assert "spot replaced tokens" in cls_origin.describe("d", tiny_encoder_path, discriminator, set()).note


def test_cls_origin_knows_mpnet_was_pretrained_without_nsp(tiny_encoder_path):
    said = cls_origin.describe("m", tiny_encoder_path, {"model_type": "mpnet"}, {"mlm"})
    assert said.objective == cls_origin.NONE and "MPNet" in said.note and "keeps no NSP head" not in said.note


@pytest.mark.parametrize(
    ("negatives", "words"),
    [("other-document", "a sentence of another document"), ("same-document", "another sentence of the same document")],
)
def test_cls_origin_of_a_pretrain_nsp_checkpoint_says_how_bertprobe_trained_it(tmp_path, negatives, words):
    # bertprobe pretrain --from minilm --nsp: [CLS] had a sentence-embedding fine-tune before bertprobe's NSP.
    run = tmp_path / "checkpoint-00000040"
    run.mkdir()
    settings = {"source": "minilm", "nsp": True, "nsp_negatives": negatives}
    (run / "trainer_state.json").write_text(json.dumps({"step": 40, "settings": settings}))
    config = {"model_type": "bert", "architectures": ["BertForPreTraining"]}
    for path in (tmp_path, run):  # the exported model at the top of --out, and its checkpoint
        said = cls_origin.describe("out", path, config, {"mlm", "nsp", "pooler"})
        assert said.objective == cls_origin.NSP
        assert "bertprobe pretrain --nsp" in said.note and "minilm" in said.note and words in said.note
        assert "only task that ever trained it" not in said.note and "random sentence" not in said.note


def test_pretrain_summary_does_not_call_the_nsp_sum_a_perplexity_of_masked_tokens():
    from rich.console import Console

    from bertprobe.pretrain import PretrainResult, perplexity
    from bertprobe.render.pretrain import pretrain_summary

    def summary(nsp: bool) -> str:
        result = PretrainResult(
            model="m", revision=None, source="minilm", out="runs/x", corpus_lines=10, chunks=12, start_step=0,
            steps=5, seconds=60.0, tokens=900, first_loss=11.5, final_loss=4.2, resumed=False, interrupted=False,
            probes_before=[], probes_after=[], settings={"nsp": nsp}, nsp_pairs=8 if nsp else 0,
            nsp_accuracy=0.5 if nsp else None,
        )  # fmt: skip
        console = Console(record=True, width=200)
        pretrain_summary(result, console)
        return " ".join(console.export_text().split())

    # MLM + NSP loss: exp(4.2) = 67 is not the masked tokens' perplexity (that alone would be about 33 at chance).
    claim = f"perplexity of masked tokens {perplexity(11.5):,.1f} → {perplexity(4.2):,.1f}"
    assert claim not in summary(nsp=True) and "masked-LM plus next-sentence loss" in summary(nsp=True)
    assert claim in summary(nsp=False)


def test_pretrain_summary_says_how_many_pairs_the_nsp_share_rests_on():
    # "30% of the last training pairs told right" on a tiny run rests on a dozen pairs: say how many.
    from rich.console import Console

    from bertprobe.pretrain import PretrainResult
    from bertprobe.render.pretrain import pretrain_summary

    result = PretrainResult(
        model="m", revision=None, source="minilm", out="runs/x", corpus_lines=10, chunks=12, start_step=0,
        steps=5, seconds=60.0, tokens=900, first_loss=11.5, final_loss=4.2, resumed=False, interrupted=False,
        probes_before=[], probes_after=[], settings={"nsp": True, "batch_size": 4}, nsp_pairs=8, nsp_accuracy=0.3,
    )  # fmt: skip
    console = Console(record=True, width=200)
    pretrain_summary(result, console)
    assert "30% of the last 20 (5 steps) training pairs told right" in " ".join(console.export_text().split())


def test_pretrain_probe_predictions_never_show_a_real_chance_as_zero():
    # Early in a run on a 30,000-piece vocabulary the top three may each have p = 0.001: "0.00 0.00 0.00" hid it.
    from rich.console import Console

    from bertprobe.pretrain import PretrainResult, ProbeTop
    from bertprobe.render.pretrain import pretrain_summary

    before = [ProbeTop("the cat sat on the [MASK] .", [("the", 0.0012), ("a", 0.0011), ("of", 0.004)])]
    after = [ProbeTop("the cat sat on the [MASK] .", [("mat", 0.31), ("floor", 0.0049), ("bed", 0.0007)])]
    result = PretrainResult(
        model="m", revision=None, source="tiny-mlm", out="runs/x", corpus_lines=10, chunks=12, start_step=0,
        steps=5, seconds=60.0, tokens=900, first_loss=11.5, final_loss=4.2, resumed=False, interrupted=False,
        probes_before=before, probes_after=after, settings={"batch_size": 4},
    )  # fmt: skip
    console = Console(record=True, width=200)
    pretrain_summary(result, console)
    shown = " ".join(console.export_text().split())
    assert "the 0.001 a 0.001 of 0.004" in shown and "mat 0.31 floor 0.005 bed 0.001" in shown, shown


# ---------------------------------------------------------------------------- special tokens written in a text

SEP_NOTICE = "'[SEP]' in your text is read as the model's special [SEP] token"


def test_a_special_token_written_in_a_text_is_told_once_in_plain_words(cli):
    # "[SEP]" typed in a sentence is read as the separator itself (as transformers reads it), silently: a learner
    # who meant the characters never learnt that the model saw a sentence end there.
    code, stdout, stderr = cli("score", "The cat sat. [SEP] It sat on the mat.", "-m", "tiny-mlm", "--json")
    assert code == 0, stderr
    assert stderr.count(SEP_NOTICE) == 1  # escaped: Rich markup would eat "[SEP]"
    assert [n for n in json.loads(stdout)["notices"] if n.startswith(SEP_NOTICE)]
    code, _, stderr = cli("score", "The cat sat on the mat.", "-m", "tiny-mlm")
    assert code == 0 and "special" not in stderr


def test_fillmask_tells_of_a_written_sep_but_not_of_the_masks_it_asks_for(cli, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("The cat sat on the [MASK].\nThe cat sat. [SEP] It sat on the [MASK].\nA [MASK] [SEP] sat.\n")
    code, stdout, stderr = cli("fillmask", "--input", texts, "-m", "tiny-mlm", "--json")
    assert code == 0, stderr
    told = [any(n.startswith(SEP_NOTICE) for n in json.loads(line)["notices"]) for line in stdout.splitlines()]
    assert told == [False, True, True]
    assert stderr.count(SEP_NOTICE) == 1 and f"2 text(s): {SEP_NOTICE}" in stderr
    assert "[MASK]' in your text" not in stderr


def test_special_strings_are_those_the_tokenizer_reads_as_special():
    from bertprobe.models import load
    from bertprobe.tokens import special_strings

    tokenizer = load("tiny-mlm", "mlm").tokenizer
    # "[sep]" in an uncased model, "<s>" in BERT and the [UNK] that stands for "🙂" were not written as specials.
    text = "[CLS] a [SEP] b [sep] <s> 🙂 [UNK] [SEP] [MASK]"
    assert special_strings(tokenizer, text) == ["[CLS]", "[SEP]", "[UNK]", "[MASK]"]
    assert special_strings(tokenizer, "The cat sat on the mat. 🙂") == []


def test_a_roberta_special_token_is_told_and_bert_spellings_are_plain_text(family_path):
    from bertprobe.models import load
    from bertprobe.tokens import special_strings

    # XLM-R's "<mask>" takes the space before it into its span; RoBERTa's tokenizer reads "[SEP]" as characters.
    for kind in ("roberta", "xlm-roberta"):
        tokenizer = load(str(family_path(kind)), "mlm").tokenizer
        assert special_strings(tokenizer, "a <s> b [SEP] c </s> d <mask> e") == ["<s>", "</s>", "<mask>"]


def test_nsp_tells_of_a_special_token_in_either_sentence_of_a_pair(cli, tiny_pretraining_path, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "sentence_a,sentence_b\nI was hungry.,So I ate. [SEP]\nI was hungry.,So I ate.\n[MASK] rang.,I ran.\n"
    )
    code, stdout, stderr = cli("nsp", "--input", pairs, "-m", tiny_pretraining_path, "--json")
    assert code == 0, stderr
    notices = [json.loads(line)["notices"] for line in stdout.splitlines()]
    assert [any(n.startswith(SEP_NOTICE) for n in told) for told in notices] == [True, False, False]
    # NSP does not ask for [MASK]: written in a sentence, it is the mask token all the same.
    assert any(n.startswith("'[MASK]' in your text is read as the model's special [MASK] token") for n in notices[2])


def test_every_one_text_command_tells_of_a_written_special_token(cli, tiny_pretraining_path, tmp_path):
    # One text on the command line, not --input: each command's own path, not run_many's.
    sentences = tmp_path / "bank.csv"
    sentences.write_text("sense,sentence\nriver,The bank [SEP] of the river.\nriver,We sat on the bank.\n"
                         "money,The bank lent money.\nmoney,She paid the bank.\n")  # fmt: skip
    runs = [
        ("fillmask", "The cat [SEP] sat on the [MASK].", "-m", "tiny-mlm"),
        ("attention", "The cat [SEP] sat.", "-m", "tiny-mlm"),
        ("attribute", "The cat [SEP] sat on the [MASK].", "-m", "tiny-mlm", "--steps", 4, "--no-faithfulness"),
        ("nsp", "I was hungry. [SEP]", "So I ate.", "-m", tiny_pretraining_path),
        ("sense", "bank", "--sentences", sentences, "-m", "tiny-mlm"),
    ]
    for args in runs:
        code, stdout, stderr = cli(*args, "--json")
        assert code == 0, (args[0], stderr)
        said = "is read as the model's special [SEP] token"  # sense: "in 1 of your 4 texts"
        assert " ".join(stderr.split()).count(said) == 1, (args[0], stderr)
        assert any(said in n for n in json.loads(stdout)["notices"]), args[0]
