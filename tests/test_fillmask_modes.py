"""fillmask modes: every number equals a plain transformers computation written here, loop by loop."""

from __future__ import annotations

import json
import math

import pytest

SENTENCE = "The quick brown fox jumps over the lazy dog near the old river bank."
RARE = "The ostrich looked at the platypus, and the ostrich ran."  # ostrich = os ##tric ##h


@pytest.fixture(scope="module")
def reference():
    """(tokenizer, BertForMaskedLM) loaded by transformers itself, per checkpoint."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    cache = {}

    def get(path):
        if path not in cache:
            model = AutoModelForMaskedLM.from_pretrained(str(path)).eval()
            cache[path] = (AutoTokenizer.from_pretrained(str(path)), model)
        return cache[path]

    return get


def _log_probs(model, ids):
    """ln P over the vocabulary at every position of one unpadded sequence."""
    import torch

    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].log_softmax(-1)


def _log_probs_batch(model, sequences):
    """The same for equal-length sequences, in one forward pass (no padding involved)."""
    import torch

    with torch.no_grad():
        return model(input_ids=torch.tensor(sequences)).logits.log_softmax(-1)


def _run(cli, *args):
    code, stdout, stderr = cli("fillmask", *args, "--json")
    assert code == 0, stderr
    return json.loads(stdout)


@pytest.mark.parametrize("model_fixture", ["mlm_path", "tiny_pretraining_path"])
def test_each_mode_pll_equals_a_one_mask_at_a_time_loop(cli, reference, request, model_fixture):
    path = request.getfixturevalue(model_fixture)
    doc = _run(cli, SENTENCE, "--mode", "each", "-m", path)
    tok, model = reference(path)
    ids = tok(SENTENCE)["input_ids"]
    expected = {}
    for i, token_id in enumerate(ids):
        if token_id in tok.all_special_ids:
            continue
        masked = list(ids)
        masked[i] = tok.mask_token_id
        expected[i] = float(_log_probs(model, masked)[i, token_id])
    assert [m["position"] for m in doc["masks"]] == list(expected)
    for mask in doc["masks"]:
        assert mask["log_prob"] == pytest.approx(expected[mask["position"]], abs=1e-4)
        assert mask["token_id"] == ids[mask["position"]]
    pll = sum(expected.values())
    assert doc["pll"] == pytest.approx(pll, abs=1e-3)
    assert doc["scored_tokens"] == len(expected)
    assert doc["pseudo_perplexity"] == pytest.approx(math.exp(-pll / len(expected)), rel=1e-4)
    worst = min(expected, key=expected.get)
    assert doc["surprising"][0] == worst and sum(m["surprising"] for m in doc["masks"]) == len(doc["surprising"])
    assert "Salazar" in doc["definition"]
    assert doc["model"] == str(path) and "revision" in doc and doc["seed"] == 0


def test_bert_mode_corrupts_80_10_10_and_predicts_what_transformers_predicts(cli, reference, mlm_path):
    doc = _run(cli, SENTENCE, "--mode", "bert", "--samples", 40, "--seed", 3, "-k", 5, "-m", mlm_path)
    tok, model = reference(mlm_path)
    ids = tok(SENTENCE)["input_ids"]
    eligible = [i for i, t in enumerate(ids) if t not in tok.all_special_ids]
    vocab = tok.convert_ids_to_tokens(list(range(len(tok))))
    assert doc["mode"] == "bert" and doc["rate"] == 0.15 and doc["seed"] == 3
    assert len(doc["samples"]) == 40
    ranks_by_action: dict[str, list[int]] = {"mask": [], "random": [], "keep": []}
    every_log_prob = _log_probs_batch(model, [sample["input_ids"] for sample in doc["samples"]])
    for sample, log_probs in zip(doc["samples"], every_log_prob, strict=True):
        chosen = [m for m in doc["masks"] if m["sample"] == sample["sample"]]
        assert len(chosen) == round(0.15 * len(eligible))  # 14 tokens -> 2 selected
        assert {m["position"] for m in chosen} <= set(eligible)
        seen_ids = sample["input_ids"]
        for i in set(range(len(ids))) - {m["position"] for m in chosen}:
            assert seen_ids[i] == ids[i]
        for mark in chosen:
            pos, seen = mark["position"], seen_ids[mark["position"]]
            assert mark["original_id"] == ids[pos] and mark["seen_id"] == seen
            if mark["action"] == "mask":
                assert seen == tok.mask_token_id
            elif mark["action"] == "keep":
                assert seen == ids[pos]
            else:
                assert seen not in tok.all_special_ids and not vocab[seen].startswith("[unused")
            probs = log_probs[pos].exp()
            top = probs.topk(5)
            assert [p["token_id"] for p in mark["predictions"]] == top.indices.tolist()
            assert [p["score"] for p in mark["predictions"]] == pytest.approx(top.values.tolist(), abs=1e-5)
            rank = int((probs > probs[ids[pos]]).sum()) + 1
            assert mark["original_rank"] == rank
            assert mark["original_score"] == pytest.approx(float(probs[ids[pos]]), abs=1e-6)
            ranks_by_action[mark["action"]].append(rank)
    assert all(ranks_by_action.values()), "40 samples show all three actions"
    summary = {row["action"]: row for row in doc["summary"]}
    for action, ranks in ranks_by_action.items():
        assert summary[action]["count"] == len(ranks)
        assert summary[action]["top1"] == pytest.approx(sum(r == 1 for r in ranks) / len(ranks))
        assert summary[action]["top5"] == pytest.approx(sum(r <= 5 for r in ranks) / len(ranks))
    assert summary["all"]["count"] == 80


def test_random_mode_selects_the_same_positions_all_masked(cli, mlm_path):
    bert = _run(cli, SENTENCE, "--mode", "bert", "--samples", 5, "--seed", 9, "-m", mlm_path)
    random_ = _run(cli, SENTENCE, "--mode", "random", "--samples", 5, "--seed", 9, "-m", mlm_path)
    assert [(m["sample"], m["position"]) for m in bert["masks"]] == [
        (m["sample"], m["position"]) for m in random_["masks"]
    ]
    assert {m["action"] for m in random_["masks"]} == {"mask"}
    assert [row["action"] for row in random_["summary"]] == ["mask", "all"]


def _whole_words(tokens):
    """Word-piece positions per word, from the ## convention (written independently of bertprobe)."""
    out = []
    for i, token in enumerate(tokens):
        if token in ("[CLS]", "[SEP]"):
            continue
        if token.startswith("##"):
            out[-1].append(i)
        else:
            out.append([i])
    return out


@pytest.mark.parametrize("mode", ["whole-word", "span"])
def test_whole_word_and_span_modes_mask_complete_words(cli, mlm_path, mode):
    doc = _run(cli, RARE, "--mode", mode, "--rate", 0.3, "--samples", 25, "-m", mlm_path)
    words = _whole_words(doc["tokens"])
    word_of = {p: w for w, pieces in enumerate(words) for p in pieces}
    assert any(len(w) > 1 for w in words)
    multi_piece_seen = False
    for sample in doc["samples"]:
        selected = {m["position"] for m in doc["masks"] if m["sample"] == sample["sample"]}
        for group in sample["groups"]:
            touched = sorted({word_of[p] for p in group})
            assert group == [p for w in touched for p in words[w]], "a word is masked whole or not at all"
            assert touched == list(range(touched[0], touched[-1] + 1)), "a span is consecutive words"
            if mode == "whole-word":
                assert len(touched) == 1
            multi_piece_seen |= len(group) > 1
        assert {p for g in sample["groups"] for p in g} == selected
        for mark in (m for m in doc["masks"] if m["sample"] == sample["sample"]):
            assert sample["input_ids"][mark["position"]] == 103  # --replace mask is the default here
    assert multi_piece_seen


def test_span_mode_with_bert_replacement_draws_once_per_span(cli, mlm_path):
    doc = _run(cli, RARE, "--mode", "span", "--replace", "bert", "--rate", 0.4, "--samples", 30, "-m", mlm_path)
    assert doc["replace"] == "bert" and doc["scheme"] == "span"
    for sample in doc["samples"]:
        action = {(m["position"]): m["action"] for m in doc["masks"] if m["sample"] == sample["sample"]}
        for group in sample["groups"]:
            assert len({action[p] for p in group}) == 1
    assert {m["action"] for m in doc["masks"]} == {"mask", "random", "keep"}


def test_seed_reproduces_the_plan(cli, mlm_path):
    one = _run(cli, SENTENCE, "--mode", "bert", "--seed", 1, "--samples", 3, "-m", mlm_path)
    again = _run(cli, SENTENCE, "--mode", "bert", "--seed", 1, "--samples", 3, "-m", mlm_path)
    other = _run(cli, SENTENCE, "--mode", "bert", "--seed", 2, "--samples", 3, "-m", mlm_path)
    assert one == again
    assert [m["position"] for m in one["masks"]] != [m["position"] for m in other["masks"]]


def test_word_mode_masks_every_piece_of_every_occurrence(cli, reference, mlm_path):
    tok, model = reference(mlm_path)
    ids = tok(RARE)["input_ids"]
    tokens = tok.convert_ids_to_tokens(ids)
    ostrich = [i for i, t in enumerate(tokens) if t in ("os", "##tric", "##h")]
    assert len(ostrich) == 6
    doc = _run(cli, RARE, "--mask-word", "Ostrich", "-k", 4, "-m", mlm_path)
    assert doc["mode"] == "word"
    assert [m["position"] for m in doc["masks"]] == ostrich
    assert [w["positions"] for w in doc["masked_words"]] == [ostrich[:3], ostrich[3:]]
    masked = [tok.mask_token_id if i in ostrich else t for i, t in enumerate(ids)]
    log_probs = _log_probs(model, masked)
    for mask in doc["masks"]:
        probs = log_probs[mask["position"]].exp()
        assert [p["token_id"] for p in mask["predictions"]] == probs.topk(4).indices.tolist()
        original = ids[mask["position"]]
        assert mask["original"]["token_id"] == original
        assert mask["original"]["score"] == pytest.approx(float(probs[original]), abs=1e-6)
        assert mask["original"]["rank"] == int((probs > probs[original]).sum()) + 1
    second = _run(cli, RARE, "--mode", "word", "--mask-word", "ostrich", "--occurrence", 2, "-m", mlm_path)
    assert [m["position"] for m in second["masks"]] == ostrich[3:]


def test_targets_score_multi_piece_words_left_to_right(cli, reference, mlm_path):
    from transformers import pipeline

    text = "Yesterday I saw an [MASK] at the zoo."
    words = ["animal", "elephant", "ostrich", "platypus"]
    doc = _run(cli, text, "--targets", ",".join(words), "-m", mlm_path)
    tok, model = reference(mlm_path)
    assert "product" in doc["target_score_definition"]
    (slot,) = doc["targets"]
    scored = {t["word"]: t for t in slot["targets"]}
    assert sorted(scored) == sorted(words)
    assert [t["rank"] for t in slot["targets"]] == [1, 2, 3, 4]
    assert [t["log_prob"] for t in slot["targets"]] == sorted((t["log_prob"] for t in slot["targets"]), reverse=True)
    before, after = text.split("[MASK]")
    for word in words:
        pieces = tok(word, add_special_tokens=False)["input_ids"]
        prefix = tok(before.strip(), add_special_tokens=False)["input_ids"]
        suffix = tok(after.strip(), add_special_tokens=False)["input_ids"]
        log_prob = 0.0
        for j in range(len(pieces)):
            ids = (
                [tok.cls_token_id]
                + prefix
                + pieces[:j]
                + [tok.mask_token_id] * (len(pieces) - j)
                + suffix
                + [tok.sep_token_id]
            )
            log_prob += float(_log_probs(model, ids)[1 + len(prefix) + j, pieces[j]])
        assert [p["token_id"] for p in scored[word]["pieces"]] == pieces
        assert scored[word]["log_prob"] == pytest.approx(log_prob, abs=1e-4)
        assert scored[word]["score"] == pytest.approx(math.exp(log_prob), rel=1e-4)
    assert len(scored["ostrich"]["pieces"]) == 3 and len(scored["platypus"]["pieces"]) == 4
    # single-piece targets: exactly the transformers pipeline's targets= score
    fill = pipeline("fill-mask", model=str(mlm_path), device="cpu")
    for ref in fill(text, targets=["animal", "elephant"]):
        assert scored[ref["token_str"]]["score"] == pytest.approx(ref["score"], abs=1e-6)


def test_targets_replace_a_masked_multi_piece_word(cli, reference, mlm_path):
    doc = _run(cli, RARE, "--mask-word", "platypus", "--targets", "platypus,cat", "-m", mlm_path)
    (slot,) = doc["targets"]
    tok, model = reference(mlm_path)
    ids = tok(RARE)["input_ids"]
    cat = tok.convert_tokens_to_ids("cat")
    assert [m["position"] for m in doc["masks"]] == slot["positions"]
    first, last = slot["positions"][0], slot["positions"][-1]
    expected = float(_log_probs(model, [*ids[:first], tok.mask_token_id, *ids[last + 1 :]])[first, cat])
    assert {t["word"]: t for t in slot["targets"]}["cat"]["log_prob"] == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("model_fixture", ["mlm_path", "tiny_pretraining_path"])
def test_joint_decoding_never_scores_below_independent_top1(cli, reference, request, model_fixture):
    path = request.getfixturevalue(model_fixture)
    text = "The [MASK] [MASK] sat on the [MASK] mat."
    doc = _run(cli, text, "--decode", "joint", "--beam", 4, "-m", path)
    tok, model = reference(path)
    ids = tok(text)["input_ids"]
    positions = [i for i, t in enumerate(ids) if t == tok.mask_token_id]

    def joint_score(fill):
        filled = list(ids)
        for p, t in zip(positions, fill, strict=True):
            filled[p] = t
        total = 0.0
        for p, t in zip(positions, fill, strict=True):
            variant = list(filled)
            variant[p] = tok.mask_token_id
            total += float(_log_probs(model, variant)[p, t])
        return total

    joint = doc["joint"]
    assert "pseudo-log-likelihood" in joint["score_definition"]
    independent = [m["predictions"][0]["token_id"] for m in doc["masks"]]
    assert joint["independent"]["token_ids"] == independent
    independent_score = joint_score(independent)
    assert joint["independent"]["joint_score"] == pytest.approx(independent_score, abs=1e-3)
    scores = [c["joint_score"] for c in joint["completions"]]
    assert scores == sorted(scores, reverse=True) and 1 <= len(scores) <= 4
    for completion in joint["completions"]:
        assert completion["positions"] == positions
        assert completion["joint_score"] == pytest.approx(joint_score(completion["token_ids"]), abs=1e-3)
    assert scores[0] >= independent_score - 1e-4


def test_show_cls_is_the_mlm_head_at_the_cls_position(cli, reference, mlm_path):
    text = "The cat sat on the [MASK]."
    doc = _run(cli, text, "--show-cls", "-k", 6, "-m", mlm_path)
    tok, model = reference(mlm_path)
    probs = _log_probs(model, tok(text)["input_ids"])[0].exp()
    top = probs.topk(6)
    assert [p["token_id"] for p in doc["cls_predictions"]] == top.indices.tolist()
    assert [p["score"] for p in doc["cls_predictions"]] == pytest.approx(top.values.tolist(), abs=1e-5)
    assert doc["cls_predictions"] != doc["masks"][0]["predictions"]
    bert = _run(cli, SENTENCE, "--mode", "bert", "--show-cls", "-m", mlm_path)
    assert len(bert["samples"][0]["cls_predictions"]) == 5


def test_tables_show_tokens_rich_would_swallow(cli, tiny_pretraining_path):
    doc = _run(cli, SENTENCE, "--mode", "bert", "--samples", 3, "-k", 3, "-m", tiny_pretraining_path)
    code, table, _ = cli("fillmask", SENTENCE, "--mode", "bert", "--samples", 3, "-k", 3, "-m", tiny_pretraining_path)
    assert code == 0
    assert "model saw: [CLS]" in table and "[SEP]" in table
    assert "recovery of the original token over 3 samples" in table
    if any(m["action"] == "mask" for m in doc["masks"] if m["sample"] == 1):
        assert "[MASK]" in table
    doc = _run(cli, SENTENCE, "--mode", "each", "-m", tiny_pretraining_path)
    code, table, _ = cli("fillmask", SENTENCE, "--mode", "each", "-m", tiny_pretraining_path)
    assert code == 0 and "pseudo-perplexity" in table and "surprising" in table
    for mask in doc["masks"]:
        assert mask["predictions"][0]["token_str"] in table  # e.g. [unused321] survives


def test_word_joint_targets_and_cls_tables(cli, mlm_path):
    code, table, _ = cli(
        "fillmask", RARE, "--mask-word", "ostrich", "--occurrence", 1, "--decode", "joint", "--beam", 2,
        "--targets", "emu,platypus", "--show-cls", "-m", mlm_path,
    )  # fmt: skip
    assert code == 0
    for expected in ("masked word: ostrich", "original: os", "joint completions", "independent top-1",
                     "targets in slot 1", "##yp", "[CLS] position"):  # fmt: skip
        assert expected in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((SENTENCE.replace("fox", "[MASK]"), "--mode", "bert"), "write it without [MASK]"),
        ((SENTENCE, "--mode", "each", "--rate", "0.2"), "--rate does not apply to --mode each"),
        ((SENTENCE, "--mode", "bert", "--targets", "cat"), "--targets does not apply to --mode bert"),
        ((SENTENCE, "--mode", "span", "--decode", "joint"), "--decode joint does not apply"),
        ((SENTENCE, "--mode", "each", "--show-cls"), "--show-cls does not apply"),
        (("The [MASK] sat.", "--samples", "3"), "--samples does not apply to --mode single"),
        ((SENTENCE, "--mask-word", "zebra"), "does not occur in the text"),
        ((SENTENCE, "--mask-word", "fox", "--occurrence", "2"), "occurrence 2 does not exist"),
        ((SENTENCE, "--mode", "word"), "--mode word needs --mask-word"),
        (("The [MASK] sat.", "--occurrence", "1"), "--occurrence does not apply"),
        (("The [MASK] sat.", "--targets", "cat,,dog"), "--targets holds an empty word"),
        (("[MASK] " * 13, "--decode", "joint"), "at most 12 masks"),
        # glued to a neighbour, "mat" would be scored as the pieces of "them ##at" or "mats"
        (("The cat sat on the[MASK].", "--targets", "rug,mat"), "'mat' merges with the text next to the mask"),
        (("The cat sat on the [MASK]s.", "--targets", "mat"), "written there it reads 'mats'"),
    ],
)
def test_user_errors_are_one_line_with_a_hint(cli, mlm_path, args, message):
    code, stdout, stderr = cli("fillmask", *args, "-m", mlm_path)
    assert code == 1 and stdout == ""
    assert message in stderr and "hint:" in stderr and "Traceback" not in stderr


def test_cli_choices_match_the_core():
    from bertprobe.cli.fillmask import Decode, Mode, Replace
    from bertprobe.fillmask import DECODES, MODES, REPLACE_PROBS

    assert [m.value for m in Mode] == list(MODES)
    assert [d.value for d in Decode] == list(DECODES)
    assert [r.value for r in Replace] == list(REPLACE_PROBS)


def test_reading_names_the_hidden_word_not_its_first_piece(cli, mlm_path):
    # "ostrich" is os ##tric ##h: the reading must not call "os" the hidden word, nor its rank the word's.
    code, table, _ = cli("fillmask", RARE, "--mask-word", "ostrich", "--occurrence", 1, "-m", mlm_path)
    assert code == 0
    said = " ".join(table.split())
    assert "The hidden word 'os'" not in said
    assert "The hidden word 'ostrich' is 3 word pieces; its first, 'os', comes" in said
    code, table, _ = cli("fillmask", "The cat sat on the mat.", "--mask-word", "cat", "-m", mlm_path)
    assert code == 0 and "The hidden word 'cat' comes" in " ".join(table.split())


def test_recovery_shares_read_100_percent_only_when_none_was_missed():
    # minilm-mlm, --mode bert --rate 0.5 --samples 1000 on "Paris is the capital of France.": 411 of the 412 kept
    # tokens came back first. The table and the reading said "100%", as if none had been missed.
    import io

    from rich.console import Console

    import bertprobe
    from bertprobe.fillmask import RecoveryRow, corrupt
    from bertprobe.render.fillmask import corruption_readings, corruption_table

    result = corrupt(bertprobe.load("tiny-mlm", head="mlm"), "Paris is the capital of France.", "bert", samples=2)
    result.summary = [
        RecoveryRow("mask", 3172, 0.441, 0.631, 0.3),
        RecoveryRow("random", 416, 0.002, 0.548, 0.2),  # 1 of 416: not "0%"
        RecoveryRow("keep", 412, 411 / 412, 1.0, 0.9),
        RecoveryRow("all", 4000, 0.493, 0.661, 0.3),
    ]
    reading = " ".join(corruption_readings(result))
    assert "99.8% of the 412 kept" in reading and "100% of the 412" not in reading
    assert "0.2% of the 416 random" in reading
    console = Console(file=io.StringIO(), width=200)
    corruption_table(result, console)
    kept = next(line for line in console.file.getvalue().splitlines() if line.startswith("│ kept"))
    assert "99.8%" in kept and "100%" in kept  # top-1 missed one; top-5 missed none


def test_single_mask_reading_does_not_round_a_probability_to_certain_or_impossible():
    # tiny-mlm on "[MASK]" puts "." first at 0.9977: the reading said "with p=1.00".
    from bertprobe.fillmask import FillMaskResult, MaskPrediction, Prediction
    from bertprobe.render.fillmask import fillmask_readings

    def reading(score):
        top = Prediction(".", 1012, score, ".")
        result = FillMaskResult("m", None, "bundled", "[MASK]", 1, ["[CLS]", "[MASK]", "[SEP]"],
                                [MaskPrediction(1, 0, 6, [top])], "[MASK]", ".",
                                cls_predictions=[top])  # fmt: skip
        return " ".join(fillmask_readings(result))

    assert "with p=0.998," in reading(0.9977) and "p=1.00" not in reading(0.9977)
    assert "with p=0.00004," in reading(0.00004) and "(p=0.00004)" in reading(0.00004)
    assert "with p=0.42," in reading(0.42) and "with p=1.00," in reading(1.0)


def test_targets_spelled_alike_share_one_score_and_rank(cli):
    # On an uncased model "Paris" is "paris": the table ranked them 1st and 2nd, as if one were likelier.
    doc = _run(
        cli, "[MASK] is the capital of France.", "--targets", "paris,Paris,london,London,zzzq", "-m", "minilm-mlm"
    )
    targets = {t["word"]: t for t in doc["targets"][0]["targets"]}
    for lower, upper in (("paris", "Paris"), ("london", "London")):
        assert targets[lower]["score"] == targets[upper]["score"]
        assert targets[lower]["rank"] == targets[upper]["rank"]
    for target in targets.values():  # 1 + the targets scored higher, as ranks are everywhere
        assert target["rank"] == 1 + sum(other["score"] > target["score"] for other in targets.values())


def test_a_wordpiece_continuation_target_is_refused_not_scored_as_hash_characters(cli, mlm_path):
    # "##s" written into the text is "#", "#", "s": its score would be labelled as the piece's.
    code, stdout, stderr = cli("fillmask", "The [MASK] sat.", "--targets", "cat,##s", "-m", mlm_path)
    assert code == 1 and stdout == ""
    assert "'##s' would be scored as the characters" in stderr and "hint:" in stderr
    code, _, _ = cli("fillmask", "Ticket [MASK] here.", "--targets", "#1", "-m", mlm_path)  # a '#' word is fine
    assert code == 0


def test_occurrence_counts_the_word_as_written_and_refuses_one_glued_to_its_neighbours(cli, mlm_path):
    # "🙂ostrich" is one [UNK] for this model: occurrence 2 used to mean the third "ostrich" written.
    text = "The 🙂ostrich looked at the ostrich, and the ostrich ran."
    second = _run(cli, text, "--mask-word", "ostrich", "--occurrence", 2, "-m", mlm_path)
    start = text.index("ostrich,")
    assert [(w["char_start"], w["char_end"]) for w in second["masked_words"]] == [(start, start + len("ostrich"))]
    code, stdout, stderr = cli("fillmask", text, "--mask-word", "ostrich", "--occurrence", 1, "-m", mlm_path)
    assert code == 1 and stdout == ""
    assert "occurrence 1 of 'ostrich'" in stderr and "never alone" in stderr and "[UNK]" in stderr


def _context(views: dict[str, float]):
    """A ContextResult following 'dog' with the given probability in each view."""
    from bertprobe.fillmask import ContextResult, ContextView, TargetScore

    made = [ContextView(c, "", [], 1, [], [TargetScore("dog", 1, p, math.log(p), [])]) for c, p in views.items()]
    return ContextResult("m", None, "bundled", "The [MASK] barked.", "single", 5, None, 4, 10, ["dog"], "targets",
                         made)  # fmt: skip


def test_context_reading_compares_both_sides_with_the_one_side_it_computed():
    # --context right,both: the reading said "742x the better side alone" and pointed at "the left column",
    # though the left side was never computed (with it, minilm-mlm gives 'door' 0.102, not 1.6e-04).
    from bertprobe.render.fillmask import context_readings

    said = " ".join(context_readings(_context({"right": 1e-4, "both": 0.0762})))
    assert "the better side" not in said and "left column" not in said
    assert "762x the right side alone" in said
    said = " ".join(context_readings(_context({"left": 0.4, "both": 0.1})))
    assert "less than the left side alone gives it" in said and "the right side points away from it" in said
    said = " ".join(context_readings(_context({"left": 0.01, "right": 0.02, "both": 0.5})))
    assert "25x the better side alone" in said and "left column" in said


def test_context_probabilities_show_the_ratio_the_reading_states():
    # tiny-mlm, "The [MASK] barked at the mailman." --targets dog: 'dog' got "p=4.3e-04 ... and p=0.004 ...: 8.3x"
    # (0.004 / 0.00043 is 9.3); 0.0014 and 0.0010 both read "0.001" beside "1.4x as strongly".
    from bertprobe.render.fillmask import context_readings

    said = " ".join(context_readings(_context({"left": 0.0014, "right": 0.0010})))
    assert "p=0.0014 from the left context alone and p=0.0010 from the right" in said and "1.4x" in said
    said = " ".join(context_readings(_context({"left": 4.3e-4, "right": 0.00357})))
    assert "p=0.0036 from the right" in said


@pytest.mark.parametrize(
    "args",
    [
        ("I feel [MASK] today.", "--targets", "happy,🙂"),
        ("I feel [MASK] today.", "--targets", "happy,🙂", "--context", "all"),
        ("I feel 🙂 today.", "--mask-word", "🙂", "--context", "all"),
    ],
)
def test_a_word_the_vocabulary_lacks_is_refused_not_scored_as_unk(cli, args):
    # minilm-mlm reads "🙂" and "😢" alike as [UNK]: both were ranked with P([UNK]) = 3.18e-07 as their score, and
    # --context said "'🙂' gets p=2.2e-06 from the left context alone".
    code, stdout, stderr = cli("fillmask", *args, "-m", "minilm-mlm")
    assert code == 1 and stdout == ""
    assert "'🙂' is not in the vocabulary of minilm-mlm" in stderr and "[UNK]" in stderr
    assert "hint:" in stderr and "Traceback" not in stderr


def test_bert_reading_asks_for_more_samples_than_were_drawn():
    # tiny-mlm, "Paris is big." --mode bert --samples 20 drew no random token; the reading said "add --samples 20".
    import bertprobe
    from bertprobe.fillmask import MAX_SAMPLES, RecoveryRow, corrupt
    from bertprobe.render.fillmask import corruption_readings

    lm = bertprobe.load("tiny-mlm", head="mlm")
    for samples, advice in ((1, "add --samples 20"), (20, "add --samples 100"), (400, f"--samples {MAX_SAMPLES}")):
        result = corrupt(lm, "Paris is big.", "bert", samples=samples)
        result.summary = [RecoveryRow("mask", 3, 0.3, 0.6, 0.2), RecoveryRow("random", 0, None, None, None),
                          RecoveryRow("keep", 1, 1.0, 1.0, 0.9), RecoveryRow("all", 4, 0.5, 0.75, 0.4)]  # fmt: skip
        said = " ".join(corruption_readings(result))
        assert f"No random token was drawn in {samples} sample(s)" in said and advice in said
    result.samples = [result.samples[0]] * MAX_SAMPLES
    said = " ".join(corruption_readings(result))
    assert "--samples" not in said.split("drawn in", 1)[1].split(".")[0] and "--rate" in said


def test_word_reading_speaks_of_every_masked_occurrence():
    # minilm-mlm, "The cat sat on the mat." --mask-word the: both "the"s are masked (p 0.852 and 0.654), yet the
    # reading spoke of the first alone, as if of the word; with a written [MASK] first it said nothing.
    import bertprobe
    from bertprobe.fillmask import fill
    from bertprobe.render.fillmask import fillmask_readings

    lm = bertprobe.load("minilm-mlm", head="mlm")
    result = fill(lm, "The cat sat on the mat.", "word", mask_word="the")
    first, second = (m.original for m in result.masks)
    said = " ".join(fillmask_readings(result))
    assert "The hidden word 'the' is masked at its 2 occurrences; it comes" in said
    assert f"(p={first.score:.3g})" in said and f"(p={second.score:.3g})" in said
    result = fill(lm, "The [MASK] sat on the mat.", "word", mask_word="mat")
    said = " ".join(fillmask_readings(result))
    assert f"The hidden word 'mat' comes {result.masks[1].original.rank}" in said
    result = fill(lm, "The ostrich saw an ostrich.", "word", mask_word="ostrich")
    pieces = len(result.masked_words[0].positions)
    said = " ".join(fillmask_readings(result))
    if pieces > 1:
        assert f"is {pieces} word pieces, masked at its 2 occurrences; its first" in said


def test_beam_without_joint_decoding_is_refused_not_ignored(cli, mlm_path, tmp_path):
    code, stdout, stderr = cli("fillmask", "The [MASK] sat on the [MASK].", "--beam", "3", "-m", mlm_path)
    assert code == 1 and stdout == "" and "--beam applies to --decode joint" in stderr
    corpus = tmp_path / "texts.txt"
    corpus.write_text("The [MASK] sat on the [MASK].\nA [MASK] barked.\n")
    code, _, stderr = cli("fillmask", "--input", corpus, "--beam", "3", "-m", mlm_path)
    assert code == 1 and "--beam applies to --decode joint" in stderr
    import bertprobe
    from bertprobe.errors import InputError

    with pytest.raises(InputError, match="--beam applies"):
        bertprobe.fill("The [MASK] sat.", beam=3, model=str(mlm_path))
    doc = _run(cli, "The [MASK] sat on the [MASK].", "--decode", "joint", "--beam", "3", "-m", mlm_path)
    assert len(doc["masks"]) == 2 and doc["joint"]["beam"] == 3
    assert _run(cli, "The [MASK] sat on the [MASK].", "--decode", "joint", "-m", mlm_path)["joint"]["beam"] == 5


def test_bert_mode_header_says_how_many_positions_were_drawn(cli):
    # "selects 15%" on a 4-token text drew 1 position (25%): the header says what was drawn, not only the setting.
    code, stdout, _ = cli("fillmask", "Paris is big.", "--mode", "bert", "-m", "tiny-mlm")
    doc = json.loads(cli("fillmask", "Paris is big.", "--mode", "bert", "-m", "tiny-mlm", "--json")[1])
    drawn = sum(m["sample"] == 1 for m in doc["masks"])
    assert code == 0 and f"(sample 1: {drawn} position" in " ".join(stdout.split())


def test_target_scores_say_the_other_masks_stay_masked(cli, reference, mlm_path):
    # With two masks, each slot's target is scored with the other mask still hidden: the definition says so.
    tok, model = reference(mlm_path)
    doc = _run(cli, "The [MASK] sat on the [MASK].", "--targets", "cat", "-m", mlm_path)
    assert "any other mask of the text still masked" in doc["target_score_definition"]
    ids = tok("The [MASK] sat on the [MASK].")["input_ids"]
    first = ids.index(tok.mask_token_id)
    expected = _log_probs(model, ids)[first].exp()[tok.convert_tokens_to_ids("cat")]
    assert doc["targets"][0]["targets"][0]["score"] == pytest.approx(float(expected), abs=1e-6)
