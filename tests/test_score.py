"""bertprobe score: every number equals a plain loop over transformers' BertForMaskedLM, one copy at a time."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

MULTI_PIECE = "The ostrich looked at the platypus."  # os ##tric ##h, pl ##at ##yp ##us
SENTENCES = [
    MULTI_PIECE,
    "Unbelievably, the hippopotamus yawned.",
    "A dog barked.",
    "The chef served ☃ soup.",  # ☃ is [UNK]
    "A dog barked.",  # a repeat: scored once, reported twice
    "The quick brown fox jumps over the lazy dog near the old river bank.",
]


@pytest.fixture(scope="module")
def reference(mlm_path):
    """A plainly written PLL: transformers' tokenizer and BertForMaskedLM, one unpadded forward pass per copy."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(mlm_path))
    model = AutoModelForMaskedLM.from_pretrained(str(mlm_path)).eval()
    cache = {}

    def score(text, metric="original", unk="skip"):
        key = (text, metric, unk)
        if key in cache:
            return cache[key]
        encoded = tok(text)
        ids, word_ids = encoded["input_ids"], encoded.word_ids()
        skip = set(tok.all_special_ids)
        if unk == "score":
            skip.discard(tok.unk_token_id)
        log_probs = []
        for i, token_id in enumerate(ids):
            if token_id in skip:
                continue
            masked = list(ids)
            masked[i] = tok.mask_token_id
            if metric == "within-word-l2r":
                for j in range(i + 1, len(ids)):
                    if word_ids[j] is not None and word_ids[j] == word_ids[i]:
                        masked[j] = tok.mask_token_id
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([masked])).logits[0, i]
            log_probs.append((i, float(logits.log_softmax(-1)[token_id])))
        cache[key] = log_probs
        return log_probs

    return score


def _score(cli, *args):
    code, stdout, stderr = cli("score", *args, "--json")
    assert code == 0, stderr
    return stdout


def _lines(stdout):
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.parametrize("metric", ["original", "within-word-l2r"])
def test_scores_equal_a_plain_transformers_loop(cli, reference, mlm_path, tmp_path, metric):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES) + "\n")
    docs = _lines(_score(cli, "--input", corpus, "--metric", metric, "-m", mlm_path))
    assert [d["index"] for d in docs] == list(range(1, len(SENTENCES) + 1))
    assert [d["text"] for d in docs] == SENTENCES
    for doc, text in zip(docs, SENTENCES, strict=True):
        expected = reference(text, metric)
        assert [s["position"] for s in doc["scores"]] == [i for i, _ in expected]
        for got, (_, want) in zip(doc["scores"], expected, strict=True):
            assert got["log_prob"] == pytest.approx(want, abs=1e-4)
        pll = sum(v for _, v in expected)
        assert doc["pll"] == pytest.approx(pll, abs=1e-3)
        assert doc["scored_tokens"] == len(expected)
        assert doc["pseudo_perplexity"] == pytest.approx(math.exp(-pll / len(expected)), rel=1e-4)
        assert doc["metric"] == metric


def test_within_word_masks_the_later_pieces_and_scores_rare_words_lower(cli, reference, mlm_path):
    original = json.loads(_score(cli, MULTI_PIECE, "-m", mlm_path))
    l2r = json.loads(_score(cli, MULTI_PIECE, "--metric", "within-word-l2r", "-m", mlm_path))
    # Pieces that end a word see the same text under both metrics; the others see less under l2r.
    by_pos = {s["position"]: s["log_prob"] for s in original["scores"]}
    changed = [s["position"] for s in l2r["scores"] if abs(s["log_prob"] - by_pos[s["position"]]) > 1e-5]
    assert changed == [2, 3, 8, 9, 10]  # os ##tric / pl ##at ##yp: not the last piece of their word
    assert l2r["pll"] < original["pll"]


def test_unk_left_out_by_default_and_scored_on_request(cli, reference, mlm_path):
    text = "The chef served ☃ soup."
    skip = json.loads(_score(cli, text, "-m", mlm_path))
    kept = json.loads(_score(cli, text, "--unk", "score", "-m", mlm_path))
    assert "[UNK]" in skip["tokens"] and skip["left_out"] == 1
    assert "[UNK]" not in [s["token"] for s in skip["scores"]]
    assert [s["token"] for s in kept["scores"]].count("[UNK]") == 1
    assert kept["scored_tokens"] == skip["scored_tokens"] + 1
    assert kept["pll"] == pytest.approx(sum(v for _, v in reference(text, unk="score")), abs=1e-3)


def test_pll_is_the_same_number_fillmask_each_prints(cli, mlm_path):
    for text in (MULTI_PIECE, "The chef served ☃ soup."):
        code, stdout, stderr = cli("fillmask", text, "--mode", "each", "--json", "-m", mlm_path)
        assert code == 0, stderr
        each = json.loads(stdout)
        scored = json.loads(_score(cli, text, "-m", mlm_path))
        assert scored["pll"] == pytest.approx(each["pll"], abs=1e-4)
        assert scored["scored_tokens"] == each["scored_tokens"]
        assert scored["pseudo_perplexity"] == pytest.approx(each["pseudo_perplexity"], rel=1e-5)


def test_jsonl_line_n_is_the_one_text_run_of_text_n(cli, mlm_path, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES) + "\n")
    docs = _lines(_score(cli, "--input", corpus, "-m", mlm_path))
    for n in (1, 4):
        alone = json.loads(_score(cli, SENTENCES[n - 1], "-m", mlm_path))
        line = dict(docs[n - 1])
        assert (line.pop("index"), line.pop("line")) == (n, n)
        assert line.keys() == alone.keys()
        assert line["tokens"] == alone["tokens"] and line["notices"] == alone["notices"]
        assert line["pll"] == pytest.approx(alone["pll"], abs=1e-4)


def test_packing_does_not_change_scores_or_order(cli, mlm_path):
    small = _lines(_score(cli, *SENTENCES, "--batch-size", 20, "-m", mlm_path))
    large = _lines(_score(cli, *SENTENCES, "-m", mlm_path))
    assert [d["text"] for d in small] == [d["text"] for d in large] == SENTENCES
    for a, b in zip(small, large, strict=True):
        assert a["pll"] == pytest.approx(b["pll"], abs=1e-4)


def test_minimal_pairs_accuracy_equals_the_reference_scores(cli, reference, mlm_path, tmp_path):
    rows = [
        ("The cats sleep.", "The cats sleeps.", "agreement"),
        ("The cat sleeps.", "The cat sleep.", "agreement"),
        ("Who did you see?", "Who did you see him?", "island"),
        ("The ostrich ran away.", "The ostrich ran the away.", "island"),
        ("A dog barked.", "A dog barked.", "identity"),  # a tie: wrong, and reported
    ]
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("good\tbad\tphenomenon\n" + "".join(f"{g}\t{b}\t{p}\n" for g, b, p in rows))
    code, stdout, stderr = cli("score", "--pairs", pairs, "--metric", "within-word-l2r", "--json", "-m", mlm_path)
    assert code == 0, stderr
    doc = json.loads(stdout)

    def pll(text):
        return sum(v for _, v in reference(text, "within-word-l2r"))

    correct = [pll(g) > pll(b) for g, b, _ in rows]
    assert doc["n"] == 5 and doc["ties"] == 1 and doc["group_column"] == "phenomenon"
    assert doc["accuracy"] == pytest.approx(sum(correct) / 5)
    for group in ("agreement", "island", "identity"):
        members = [c for c, (_, _, p) in zip(correct, rows, strict=True) if p == group]
        assert doc["by_group"][group]["n"] == len(members)
        assert doc["by_group"][group]["accuracy"] == pytest.approx(sum(members) / len(members))
    assert doc["by_group"]["identity"]["ties"] == 1 and doc["pairs"][4]["tie"] and not doc["pairs"][4]["correct"]
    for pair, (good, bad, _) in zip(doc["pairs"], rows, strict=True):
        assert pair["good_pll"] == pytest.approx(pll(good), abs=1e-3)
        assert pair["bad_pll"] == pytest.approx(pll(bad), abs=1e-3)
    assert "exactly equal" in stderr


def test_blimp_jsonl_groups_by_uid_and_the_table_ends_in_words(cli, mlm_path, tmp_path):
    blimp = tmp_path / "blimp.jsonl"
    lines = [
        {"sentence_good": "The cats sleep.", "sentence_bad": "The cats sleeps.", "UID": "agr", "linguistics_term": "s"},
        {"sentence_good": "Who ran?", "sentence_bad": "Who ran him?", "UID": "isl", "linguistics_term": "f"},
    ]
    blimp.write_text("".join(json.dumps(x) + "\n" for x in lines))
    code, stdout, stderr = cli("score", "--pairs", blimp, "--json", "-m", mlm_path)
    assert code == 0, stderr
    assert set(json.loads(stdout)["by_group"]) == {"agr", "isl"}
    code, stdout, _ = cli("score", "--pairs", blimp, "--group-column", "linguistics_term", "-m", mlm_path)
    assert code == 0 and "linguistics_term" in stdout
    assert "pairs" in stdout.splitlines()[-1] or "chance" in stdout.splitlines()[-1]
    code, _, stderr = cli("score", "--pairs", blimp, "--group-column", "nope", "-m", mlm_path)
    assert code == 1 and "'nope'" in stderr


def test_summary_table_for_many_texts_and_per_token_table_for_one(cli, mlm_path):
    code, stdout, _ = cli("score", *SENTENCES, "--show", 2, "-m", mlm_path)
    assert code == 0
    assert "... and 4 more" in stdout and "corpus pseudo-perplexity" in stdout
    assert "lower is more" in stdout.replace("\n", " ")
    code, stdout, _ = cli("score", MULTI_PIECE, "-m", mlm_path)
    assert code == 0 and "##yp" in stdout and "PLL" in stdout
    # The table ends by reading this text's numbers: its perplexity and its least expected token.
    code, doc, _ = cli("score", MULTI_PIECE, "--json", "-m", mlm_path)
    scores = json.loads(doc)["scores"]
    worst = min(scores, key=lambda s: s["log_prob"])
    said = " ".join(stdout.split())
    assert f"Pseudo-perplexity {json.loads(doc)['pseudo_perplexity']:.2f}: masked one at a time" in said
    assert f"Least expected: {worst['token']!r} (position {worst['position']}," in said


def _run_cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "bertprobe", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **(env or {})},
        timeout=300,
    )


def test_out_is_written_whole_or_not_at_all(mlm_path, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES) + "\n")
    out = tmp_path / "scores.jsonl"
    out.write_text("an earlier run\n")
    crashed = _run_cli(
        "score",
        "--input",
        corpus,
        "--out",
        out,
        "-m",
        mlm_path,
        env={"BERTPROBE_TEST_KILL_AFTER": "jsonl:line-written#3"},
    )
    assert crashed.returncode == -9  # SIGKILL after the third line
    assert out.read_text() == "an earlier run\n"  # the killed run left the old file as it was
    killed_at_rename = _run_cli(
        "score", "--input", corpus, "--out", out, "-m", mlm_path,
        env={"BERTPROBE_TEST_KILL_AFTER": "atomic-write:temp-written"},
    )  # fmt: skip
    assert killed_at_rename.returncode == -9 and out.read_text() == "an earlier run\n"
    rerun = _run_cli("score", "--input", corpus, "--out", out, "--json", "-m", mlm_path)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout == ""  # --out takes the lines instead of stdout
    docs = _lines(out.read_text())
    assert [d["text"] for d in docs] == SENTENCES
    assert "Wrote 6 result(s)" in rerun.stderr


def test_cli_choices_match_the_core():
    from bertprobe.cli.score import Metric, Unk
    from bertprobe.score import METRICS, UNK_CHOICES

    assert tuple(m.value for m in Metric) == METRICS
    assert tuple(u.value for u in Unk) == UNK_CHOICES


def test_pairs_with_a_bad_line_stop_or_skip_and_out_is_one_document(cli, mlm_path, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("good,bad\nThe cats sleep.,The cats sleeps.\n,The dog bark.\nWho ran?,Who ran him?\n")
    code, stdout, stderr = cli("score", "--pairs", pairs, "-m", mlm_path)
    assert code == 1 and stdout == "" and "line 3" in stderr and "empty text" in stderr
    out = tmp_path / "pairs.json"
    code, stdout, stderr = cli("score", "--pairs", pairs, "--on-bad", "skip", "--out", out, "--json", "-m", mlm_path)
    assert code == 0, stderr
    assert stdout == "" and "skipped" in stderr
    doc = json.loads(out.read_text())
    assert doc["n"] == 2 and [p["line"] for p in doc["pairs"]] == [2, 4] and len(doc["skipped"]) == 1
    assert doc["by_group"].keys() == {"all"} and doc["group_column"] is None


def test_a_pair_the_tokenizer_cannot_tell_apart_is_a_tie_whatever_the_packing(cli, mlm_path, tmp_path):
    # The model is uncased: both sentences are the same word pieces, so it cannot prefer either. Scored in
    # different forward passes, padding noise in the last digits must not count the pair as right.
    same = ("The cat sleeps on the old mat by the door.", "the cat sleeps on the  old mat by the door.")
    longer = "Some other much longer sentence that pads the batch with many more word pieces than before."
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"good\tbad\n{same[0]}\t{same[1]}\nA dog.\t{longer}\n")
    for batch_size in (4096, 100, 50, 13):
        code, stdout, stderr = cli("score", "--pairs", pairs, "--batch-size", batch_size, "--json", "-m", mlm_path)
        assert code == 0, stderr
        pair = json.loads(stdout)["pairs"][0]
        assert pair["good_pll"] == pair["bad_pll"] and pair["tie"] and not pair["correct"], batch_size
        code, stdout, _ = cli("score", *same, "--batch-size", batch_size, "--json", "-m", mlm_path)
        good, bad = _lines(stdout)
        assert [s["char_start"] for s in good["scores"]] != [s["char_start"] for s in bad["scores"]]
        assert good["text"] == same[0] and bad["text"] == same[1]


def test_within_word_reading_says_only_the_later_pieces_are_masked(cli, mlm_path):
    # Under within-word-l2r "##h" of "os ##tric ##h" is scored with "os ##tric" visible: the words under the
    # table must not say the rest of its word was masked, nor that tokens were masked one at a time.
    for args in ((MULTI_PIECE,), (MULTI_PIECE, "A dog barked.")):
        code, stdout, _ = cli("score", *args, "--metric", "within-word-l2r", "-m", mlm_path)
        said = " ".join(stdout.split())
        assert code == 0 and "the later pieces of its word" in said
        assert "rest of its word" not in said and "one at a time" not in said


def test_a_near_certain_token_is_not_shown_as_p_1():
    # P = 0.9996 is not certain: three significant digits would print it as "1", in the table and the reading.
    from rich.console import Console

    from bertprobe.render.score import sentence_readings, sentence_table
    from bertprobe.score import SentenceScore, TokenScore

    scores = [TokenScore(1, "the", 1996, 0, 3, -2.0), TokenScore(2, ".", 1012, 3, 4, math.log(0.9996))]
    result = SentenceScore("m", None, "local", "the.", "original", "skip", -2.0004, 2.72, 2, [], scores, 0, "")
    assert "(P=0.9996)" in sentence_readings(result)[0]
    console = Console(record=True, width=120)
    sentence_table(result, console)
    rows = [line for line in console.export_text().splitlines() if "│ ." in line]
    assert len(rows) == 1 and "0.9996" in rows[0]


def test_a_tie_is_not_listed_as_scored_the_wrong_way_round(cli, mlm_path, tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("good\tbad\nA dog barked.\tA dog barked.\n")
    code, stdout, _ = cli("score", "--pairs", pairs, "-m", mlm_path)
    said = " ".join(stdout.split())
    assert code == 0 and "0.000" in said  # the tie is listed ...
    assert "scored the wrong way round (" not in said and "tied" in said  # ... under a title that says so


def test_the_unk_notice_says_which_pairs_lose_more_tokens_on_one_side(cli, mlm_path, tmp_path):
    # "their pairs compare different numbers of tokens" was said of every pair with an [UNK], also of one that
    # loses one on each side and so still compares as many tokens on both.
    even = tmp_path / "even.csv"
    even.write_text("good,bad\nThe cat ☃ sat.,The cat sat ☃.\n")
    code, stdout, stderr = cli("score", "--pairs", even, "--json", "-m", mlm_path)
    assert code == 0, stderr
    notices = " ".join(json.loads(stdout)["notices"])
    assert "2 sentence(s) hold [UNK] tokens" in notices and "each pair loses as many on both sides" in notices
    uneven = tmp_path / "uneven.csv"
    uneven.write_text("good,bad\nThe cat ☃ sat.,The cat sat ☃ ☃.\nA dog ran.,A dog ☃ ran.\n")
    code, stdout, stderr = cli("score", "--pairs", uneven, "--json", "-m", mlm_path)
    assert code == 0, stderr
    notices = " ".join(json.loads(stdout)["notices"])
    assert "in 2 pair(s) one sentence loses more of them than the other" in notices


def test_pairs_table_total_row_and_wrong_list_cannot_be_misread(cli, mlm_path, tmp_path):
    pairs = tmp_path / "pairs.csv"
    good = "The keys that the man who lives next door to my sister lost yesterday are on the tablecloth."
    bad = good.replace(" are ", " is ")
    # Both orders of one pair: one of them is scored the wrong way round (or both tie). Two pairs that differ
    # only in case tie on this uncased model, and ties are listed as wrong too: at least three wrong rows.
    rows = [(good, bad, "all"), (bad, good, "all")]
    rows += [("The cats sleep.", "the cats sleep.", "agreement"), ("Dogs run.", "dogs run.", "agreement")]
    pairs.write_text("good,bad,kind\n" + "".join(f'"{g}","{b}",{k}\n' for g, b, k in rows))
    args = ("score", "--pairs", pairs, "--group-column", "kind", "-m", mlm_path)
    doc = json.loads(cli(*args, "--json")[1])
    wrong = sum(not p["correct"] for p in doc["pairs"])
    assert wrong >= 3
    code, stdout, stderr = cli(*args, "--show", "1")
    assert code == 0, stderr
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in stdout.splitlines() if line.startswith("│")]
    # The user's group "all" keeps its name; the total row says it is the total of both groups.
    assert cells[1][:2] == ["all", "2"] and cells[2][:2] == ["all 2 groups", "4"], cells
    assert f"1 of {wrong}; --show N for more" in stdout
    code, stdout, _ = cli(*args, "--show", "10")
    assert f"all {wrong})" in stdout
    # Long sentences are shown whole: the ending of each listed sentence is on screen.
    assert stdout.count("tablecloth.") >= 2


def test_a_nearly_certain_token_reads_as_a_small_negative_ln_p_not_minus_zero():
    from bertprobe.render.score import _ln

    assert _ln(-0.0001) == "-1.0e-04"
    assert _ln(-0.0123) == "-0.012"
    assert _ln(0.0) == "0.000"


def test_the_readme_pairs_example_is_what_score_prints(cli, monkeypatch):
    # The README showed the total row as "all", the name the table no longer gives it (a group may be called so).
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    block = readme.split("$ bertprobe score --pairs examples/minimal_pairs.csv\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(root)
    monkeypatch.setenv("COLUMNS", "80")
    code, stdout, stderr = cli("score", "--pairs", "examples/minimal_pairs.csv", "-m", "minilm-mlm")
    assert code == 0, stderr
    printed = " ".join(stdout.split())
    shown = [line for line in block.splitlines() if line.strip() and line.strip() != "..."]
    assert shown and all(" ".join(line.split()) in printed for line in shown), stdout


def _pairs_result(differences):
    from bertprobe.score import GroupAccuracy, PairScore, PairsResult

    pairs = [
        PairScore(n, n + 1, "all", f"good {n}", f"bad {n}", -10.0 + d, -10.0, 3, 3, d, d > 0, d == 0)
        for n, d in enumerate(differences, start=1)
    ]
    correct = sum(p.correct for p in pairs)
    ties = sum(p.tie for p in pairs)
    return PairsResult(
        "m", None, "local", "pairs.csv", "original", "skip", correct / len(pairs), len(pairs), correct, ties, None,
        {"all": GroupAccuracy(correct / len(pairs), len(pairs), correct, ties)}, pairs, "",
    )  # fmt: skip


def test_a_wrong_pair_with_a_tiny_gap_does_not_read_as_a_tie():
    # A pair scored the wrong way round by 0.0002 was listed as "-0.000" beside a tie's "0.000", under a
    # title that says the list holds both.
    from rich.console import Console

    from bertprobe.render.score import pairs_table

    console = Console(record=True, width=120)
    pairs_table(_pairs_result([-0.0002, 0.0, 1.0]), console)
    rows = {line.split("│")[1].strip(): line.split("│")[-2].strip() for line in console.export_text().splitlines()
            if line.startswith("│") and "good" in line}  # fmt: skip
    assert rows == {"1": "-2.0e-04", "2": "0.000"}


def test_a_pll_near_zero_never_reads_minus_zero():
    from rich.console import Console

    from bertprobe.render.score import corpus_lines, sentence_table, summary_cells
    from bertprobe.score import SentenceScore, TokenScore

    scores = [TokenScore(1, "the", 1996, 0, 3, -0.0001), TokenScore(2, ".", 1012, 3, 4, -0.0002)]
    result = SentenceScore("m", None, "local", "the.", "original", "skip", -0.0003, 1.00015, 2, [], scores, 0, "")
    cells = summary_cells(result)
    assert cells[1:3] == ["-3.0e-04", "-1.5e-04"]
    said = " ".join(corpus_lines(1, 2, -0.0003, "original"))
    assert "total PLL -3.0e-04" in said and "mean PLL per token -1.5e-04" in said
    console = Console(record=True, width=120)
    sentence_table(result, console)
    assert "PLL -3.0e-04 over 2 tokens" in console.export_text() and "-0.000" not in console.export_text()


def test_the_least_and_the_most_expected_token_never_read_as_equally_likely():
    # P 0.12345 and 0.12349 both read "0.123": "least expected ... P=0.123; most expected ... P=0.123".
    from bertprobe.render.score import sentence_readings
    from bertprobe.score import SentenceScore, TokenScore

    scores = [TokenScore(1, "a", 1037, 0, 1, math.log(0.12345)), TokenScore(2, "b", 1038, 2, 3, math.log(0.12349))]
    pll = math.fsum(s.log_prob for s in scores)
    result = SentenceScore("m", None, "local", "a b", "original", "skip", pll, math.exp(-pll / 2), 2, [], scores, 0, "")
    said = sentence_readings(result)[0]
    assert "'a' (position 1, P=0.12345)" in said and "'b' (P=0.12349)" in said


def test_a_pseudo_perplexity_above_the_vocabulary_size_is_read_as_worse_than_blind():
    # "a pick among 32,404,479 equally likely tokens" from a 30,522-piece vocabulary is worse than a uniform guess.
    from bertprobe.render.score import sentence_readings
    from bertprobe.score import SentenceScore, TokenScore

    scores = [TokenScore(1, "[UNK]", 100, 0, 1, -17.3), TokenScore(2, "b", 1038, 2, 3, -17.3)]
    pll = math.fsum(s.log_prob for s in scores)
    args = ("m", None, "local", "a b", "original", "score", pll, math.exp(-pll / 2), 2, [], scores, 0, "")
    said = sentence_readings(SentenceScore(*args, vocab_size=30522))[0]
    assert "more than the 30,522 word pieces of its vocabulary: worse than a blind guess" in said
    assert "blind guess" not in sentence_readings(SentenceScore(*args, vocab_size=10**9))[0]
