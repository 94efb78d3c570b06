"""attribute: scores equal independent computations on transformers; a planted word ranks first; errors are one line."""

from __future__ import annotations

import json
import random

import pytest
import torch

from bertprobe import models
from bertprobe.attribute import METHODS, AttributionSettings, attribute_fill_mask, attribute_probe

SENTENCE = "The cat sat on the [MASK] in the old house."


@pytest.fixture(scope="module")
def reference_mlm():
    """transformers' own BertForMaskedLM for a checkpoint: the independent side of every comparison."""
    from transformers import BertForMaskedLM

    cache = {}

    def get(path):
        if path not in cache:
            cache[path] = BertForMaskedLM.from_pretrained(str(path)).eval()
        return cache[path]

    return get


def _mask_logit(model, target_id, position, input_ids=None, inputs_embeds=None):
    # transformers' BertForMaskedLM, its MLM head applied at the one position that matters.
    hidden = model.bert(input_ids=input_ids, inputs_embeds=inputs_embeds).last_hidden_state
    return model.cls(hidden[:, position])[:, target_id]


def _free(result):
    return [t.index for t in result.tokens if not t.fixed]


@pytest.mark.parametrize(("model_fixture", "per_pass"), [("mlm_path", None), ("tiny_pretraining_path", 7)])
def test_ig_equals_captum_layer_ig_on_transformers_and_is_complete(request, reference_mlm, model_fixture, per_pass):
    from captum.attr import LayerIntegratedGradients

    path = request.getfixturevalue(model_fixture)
    lm = models.load(str(path), "mlm", device="cpu")
    settings = AttributionSettings(internal_batch_size=per_pass, faithfulness=False)
    result = attribute_fill_mask(lm, SENTENCE, target="garden", settings=settings)
    assert result.internal_batch_size == (per_pass or 50)

    ref = reference_mlm(path)
    encoding = lm.tokenizer.encode(SENTENCE)
    ids = torch.tensor([encoding.ids])
    position = encoding.tokens.index("[MASK]")
    target_id = lm.tokenizer.token_to_id("garden")
    keep = torch.tensor([s or t == "[MASK]" for s, t in zip(encoding.special, encoding.tokens, strict=True)])
    baseline_ids = torch.where(keep, ids, torch.full_like(ids, lm.tokenizer.pad_token_id))
    lig = LayerIntegratedGradients(
        lambda i: _mask_logit(ref, target_id, position, input_ids=i), ref.get_input_embeddings()
    )
    expected = lig.attribute(ids, baselines=baseline_ids, n_steps=50).sum(-1)[0]

    ours = torch.tensor([t.attribution for t in result.tokens])
    torch.testing.assert_close(ours, expected.float(), atol=2e-4, rtol=1e-3)
    with torch.no_grad():
        f_x = float(_mask_logit(ref, target_id, position, input_ids=ids))
        f_b = float(_mask_logit(ref, target_id, position, input_ids=baseline_ids))
    assert result.output == pytest.approx(f_x, abs=1e-4)
    assert result.baseline_output == pytest.approx(f_b, abs=1e-4)
    # Completeness: the attributions sum to F(x) - F(baseline) within the delta the result reports.
    conv = result.convergence
    assert abs(float(ours.sum()) - (f_x - f_b)) <= abs(conv.delta) + 1e-4
    assert conv.passed and abs(conv.delta) <= 0.05 * abs(f_x - f_b)
    assert [t.attribution for t in result.tokens if t.fixed] == [0.0, 0.0, 0.0]  # [CLS], [MASK], [SEP]


@pytest.mark.parametrize("baseline", ["zero", "mask"])
def test_ig_equals_a_plain_riemann_integral(reference_mlm, mlm_path, baseline):
    lm = models.load(str(mlm_path), "mlm", device="cpu")
    result = attribute_fill_mask(
        lm, SENTENCE, settings=AttributionSettings(baseline=baseline, steps=64, faithfulness=False)
    )
    ref = reference_mlm(mlm_path)
    encoding = lm.tokenizer.encode(SENTENCE)
    ids = torch.tensor([encoding.ids])
    position, target_id = result.target.position, result.target.index
    embed = ref.get_input_embeddings()
    with torch.no_grad():
        x = embed(ids)
        free = torch.tensor([not t.fixed for t in result.tokens]).view(1, -1, 1)
        replaced = (
            torch.zeros_like(x) if baseline == "zero" else embed(torch.full_like(ids, lm.tokenizer.mask_token_id))
        )
        b = torch.where(free, replaced, x)
    steps = 256
    alphas = (torch.arange(steps) + 0.5) / steps  # midpoint rule
    path = (b + alphas.view(-1, 1, 1) * (x - b)).requires_grad_()
    (grads,) = torch.autograd.grad(_mask_logit(ref, target_id, position, inputs_embeds=path).sum(), path)
    expected = (grads.mean(0) * (x - b)[0]).sum(-1)
    ours = torch.tensor([t.attribution for t in result.tokens])
    scale = float(expected.abs().max())
    torch.testing.assert_close(ours, expected, atol=0.01 * scale, rtol=0)


@pytest.mark.parametrize("baseline", ["pad", "mask", "zero"])
def test_occlusion_equals_a_leave_one_out_loop(reference_mlm, mlm_path, baseline):
    lm = models.load(str(mlm_path), "mlm", device="cpu")
    settings = AttributionSettings(method="occlusion", baseline=baseline, internal_batch_size=3, faithfulness=False)
    result = attribute_fill_mask(lm, SENTENCE, target="garden", settings=settings)
    ref = reference_mlm(mlm_path)
    encoding = lm.tokenizer.encode(SENTENCE)
    position, target_id = result.target.position, result.target.index
    expected = []
    with torch.no_grad():
        full = float(_mask_logit(ref, target_id, position, input_ids=torch.tensor([encoding.ids])))
        for index, token in enumerate(encoding.tokens):
            if encoding.special[index] or token == "[MASK]":
                expected.append(0.0)
                continue
            if baseline == "zero":
                embeds = ref.get_input_embeddings()(torch.tensor([encoding.ids])).clone()
                embeds[0, index] = 0.0
                left_out = float(_mask_logit(ref, target_id, position, inputs_embeds=embeds))
            else:
                ids = list(encoding.ids)
                ids[index] = lm.tokenizer.pad_token_id if baseline == "pad" else lm.tokenizer.mask_token_id
                left_out = float(_mask_logit(ref, target_id, position, input_ids=torch.tensor([ids])))
            expected.append(full - left_out)
    assert [t.attribution for t in result.tokens] == pytest.approx(expected, abs=1e-4)
    assert result.convergence is None and result.steps is None


def test_saliency_is_gradient_times_input(reference_mlm, tiny_pretraining_path):
    lm = models.load(str(tiny_pretraining_path), "mlm", device="cpu")
    settings = AttributionSettings(method="saliency", faithfulness=False)
    result = attribute_fill_mask(lm, SENTENCE, target="garden", settings=settings)
    ref = reference_mlm(tiny_pretraining_path)
    encoding = lm.tokenizer.encode(SENTENCE)
    embeds = ref.get_input_embeddings()(torch.tensor([encoding.ids])).detach().requires_grad_()
    logit = _mask_logit(ref, result.target.index, result.target.position, inputs_embeds=embeds)
    (grad,) = torch.autograd.grad(logit.sum(), embeds)
    expected = (grad * embeds)[0].sum(-1).detach()
    for token in result.tokens:
        assert token.attribution == pytest.approx(0.0 if token.fixed else float(expected[token.index]), abs=1e-5)


def test_scores_are_normalised_and_words_merge_their_pieces(mlm_path):
    lm = models.load(str(mlm_path), "mlm", device="cpu")
    text = "An unbelievably [MASK] story about hippopotamuses."
    result = attribute_fill_mask(lm, text, settings=AttributionSettings(steps=16, faithfulness=False))
    free = [t for t in result.tokens if not t.fixed]
    total = sum(abs(t.attribution) for t in free)
    for token in free:
        assert token.normalised == pytest.approx(token.attribution / total, abs=1e-6)
    assert sum(abs(t.normalised) for t in free) == pytest.approx(1.0, abs=1e-5)
    split = [w for w in result.words if len(w.pieces) > 1]
    assert split, "the text should hold words of several word pieces"
    for word in result.words:
        assert word.attribution == pytest.approx(sum(result.tokens[i].attribution for i in word.pieces), abs=1e-6)
        assert word.text == text[word.char_start : word.char_end]
    assert [w.text for w in result.words][:3] == ["An", "unbelievably", "[MASK]"]


def test_faithfulness_equals_deleting_tokens_by_hand(reference_mlm, mlm_path):
    lm = models.load(str(mlm_path), "mlm", device="cpu")
    result = attribute_fill_mask(lm, SENTENCE, settings=AttributionSettings(steps=16, random_orders=5))
    ref = reference_mlm(mlm_path)
    encoding = lm.tokenizer.encode(SENTENCE)
    fixed = [t.fixed for t in result.tokens]
    free = [t.index for t in result.tokens if not t.fixed]
    ranked = sorted(free, key=lambda i: (-result.tokens[i].attribution, i))

    def probability(kept):
        ids = torch.tensor([[encoding.ids[i] for i in kept]])
        with torch.no_grad():
            logits = ref(input_ids=ids).logits[0, kept.index(result.target.position)]
        return float(logits.softmax(-1)[result.target.index])

    everything = list(range(len(encoding)))
    full = probability(everything)
    comp, suff = [], []
    for percent in (1, 5, 10, 20, 50):
        top = set(ranked[: max(1, -(-len(free) * percent // 100))])
        comp.append(full - probability([i for i in everything if i not in top]))
        suff.append(full - probability([i for i in everything if fixed[i] or i in top]))
    faith = result.faithfulness
    assert faith.full == pytest.approx(full, abs=1e-5)
    assert faith.comprehensiveness == pytest.approx(comp, abs=1e-5)
    assert faith.sufficiency == pytest.approx(suff, abs=1e-5)
    assert faith.comprehensiveness_aopc == pytest.approx(sum(comp) / 5, abs=1e-5)
    assert faith.sufficiency_aopc == pytest.approx(sum(suff) / 5, abs=1e-5)
    assert faith.removed == [1, 1, 1, 2, 5]  # 10 free pieces
    assert faith.random_orders == 5 and 0.0 <= faith.beats_random_comprehensiveness <= 1.0


def test_convergence_delta_is_flagged_and_auto_steps_fixes_it(cli, mlm_path):
    text = "Paris is the capital of [MASK]."
    args = ("attribute", text, "-m", mlm_path, "--no-faithfulness", "--json")
    code, stdout, stderr = cli(*args, "--steps", 1)
    assert code == 0
    conv = json.loads(stdout)["convergence"]
    assert not conv["passed"] and abs(conv["delta"]) > 0.05 * abs(conv["difference"])
    assert "did not converge" in stderr and "--auto-steps" in stderr

    code, stdout, stderr = cli(*args, "--steps", 1, "--auto-steps")
    doc = json.loads(stdout)
    conv = doc["convergence"]
    assert code == 0 and conv["passed"] and "did not converge" not in stderr
    tried = [t["steps"] for t in conv["tries"]]
    assert tried[0] == 1 and tried == sorted(tried) and len(tried) > 1 and doc["steps"] == tried[-1]
    assert abs(sum(t["attribution"] for t in doc["tokens"]) - conv["difference"]) <= 0.05 * abs(conv["difference"])

    code, stdout, stderr = cli(*args, "--steps", 1, "--auto-steps", "--max-steps", 2)
    assert code == 0 and not json.loads(stdout)["convergence"]["passed"]
    assert "cap of 2" in stderr


@pytest.mark.parametrize(("steps", "max_steps"), [(1, 1), (2, 1)])
def test_auto_steps_with_no_room_to_double_is_refused_before_any_work(cli, mlm_path, tmp_path, steps, max_steps):
    # --steps at or above --max-steps leaves --auto-steps nothing to do: one run, then advice that cannot help.
    text = "Paris is the capital of [MASK]."
    corpus = tmp_path / "texts.txt"
    corpus.write_text(f"{text}\nThe cat sat on the [MASK].\n")
    ask = ("--steps", steps, "--auto-steps", "--max-steps", max_steps)
    for source in ((text,), ("--input", corpus, "--on-bad", "skip")):  # a settings error, not a bad line
        code, stdout, stderr = cli("attribute", *source, "-m", mlm_path, *ask)
        said = " ".join(stderr.split())
        assert code == 1 and stdout == "" and "Traceback" not in stderr
        assert stderr.startswith("error: --auto-steps has no room to double") and "line 1" not in said
        assert f"--max-steps above {steps} (e.g. --max-steps {2 * steps})" in said
        assert f"drop --auto-steps to run --steps {steps} once" in said
    # Other methods have no steps: the notice says so, the run goes on.
    code, _, stderr = cli("attribute", text, "-m", mlm_path, "--method", "saliency", "--no-faithfulness", *ask)
    assert code == 0 and "apply to ig only" in stderr


def test_unconverged_advice_is_what_would_let_it_converge(cli, mlm_path):
    text = "Paris is the capital of [MASK]."  # 1 or 2 steps leave |delta| at 66% / 21%
    args = ("attribute", text, "-m", mlm_path, "--no-faithfulness", "--explain")

    def advice(*extra):
        code, stdout, stderr = cli(*args, *extra)
        assert code == 0 and "did not converge" in stderr
        return " ".join(stderr.split()), " ".join(stdout.split())

    def said(wanted, notice, table):
        # The stderr notice and the --explain reading give the same advice.
        return f"trustworthy ({wanted})" in notice and f"change yet: {wanted}." in table

    # Without --auto-steps, below the cap: either doubles the steps.
    assert said("rerun with --auto-steps or a larger --steps", *advice("--steps", 1))
    # Without --auto-steps, at or above the cap: --auto-steps alone would be refused, so the cap is named.
    for steps in (1, 2):
        wanted = f"rerun with a larger --steps, or with --auto-steps and a --max-steps above {steps}"
        assert said(wanted, *advice("--steps", steps, "--max-steps", 1))
    # --auto-steps that doubled up to its cap: only a higher cap lets it go on.
    wanted = "--auto-steps stopped at its cap of 2; raise --max-steps"
    assert said(wanted, *advice("--steps", 1, "--auto-steps", "--max-steps", 2))


def test_unconverged_advice_at_the_step_limit_asks_for_no_more_steps():
    from bertprobe.attribute import MAX_STEPS, Convergence, StepTry

    def advice(steps, auto_steps, max_steps):
        tries = [StepTry(steps, 0.5, 0.5)]
        conv = Convergence(0.5, 1.0, 0.5, 0.05, False, steps, tries, auto_steps=auto_steps, max_steps=max_steps)
        return conv.advice()

    assert "raise" not in advice(MAX_STEPS, True, MAX_STEPS) and f"{MAX_STEPS:,}" in advice(MAX_STEPS, True, MAX_STEPS)
    assert "larger" not in advice(MAX_STEPS, False, 800) and f"{MAX_STEPS:,}" in advice(MAX_STEPS, False, 800)
    assert "--max-steps above 800" in advice(800, False, 800)


# --------------------------------------------------------------------------------------------
# The probe path, on the real MiniLM: a word planted as the label's only cause ranks first.
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zebra_probe(tmp_path_factory, minilm_path):
    """A probe trained (plain scikit-learn) on sentences whose label is 'mentions a zebra'."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from bertprobe import features
    from bertprobe.probe import save_probe

    lm = models.load("minilm", "encoder", device="cpu")
    rng = random.Random(0)
    nouns = ["dog", "cat", "horse", "teacher", "farmer", "child", "bird", "doctor"]
    verbs = ["walked", "slept", "waited", "sang", "ran", "stood", "rested"]
    places = ["river", "house", "market", "garden", "station", "school", "forest"]
    adjectives = ["old", "quiet", "small", "happy", "tired", "young"]
    texts, labels = [], []
    for number in range(60):
        noun = "zebra" if number % 2 == 0 else rng.choice(nouns)
        texts.append(f"the {rng.choice(adjectives)} {noun} {rng.choice(verbs)} near the {rng.choice(places)}")
        labels.append(int(noun == "zebra"))
    extracted = features.extract(lm, texts)
    x = np.stack([item.hidden_states[lm.num_layers, 0].numpy() for item in extracted])  # [CLS], last layer
    scaler = StandardScaler().fit(x)
    classifier = LogisticRegression(max_iter=2000).fit(scaler.transform(x), labels)
    meta = {
        "model": "minilm",
        "revision": None,
        "fingerprint": lm.fingerprint,
        "layer": lm.num_layers,
        "pooling": "cls",
        "max_length": 128,
        "labels": ["other", "zebra"],
        "metrics": {},
    }
    directory = tmp_path_factory.mktemp("zebra-probe")
    save_probe(directory, classifier.coef_, classifier.intercept_, scaler.mean_, scaler.scale_, meta)
    return directory, scaler, classifier


ZEBRA_TEXT = "a tired zebra and a horse slept near the quiet school"


def test_planted_word_ranks_first_and_beats_random_orders(cli, zebra_probe):
    directory, scaler, classifier = zebra_probe
    code, stdout, _ = cli("attribute", ZEBRA_TEXT, "--probe", directory, "--steps", 16, "--random-orders", 10, "--json")
    assert code == 0
    doc = json.loads(stdout)
    assert doc["model"] == "minilm" and doc["target"]["label"] == "zebra" and doc["target"]["predicted"]
    words = sorted((w for w in doc["words"] if not w["fixed"]), key=lambda w: -w["attribution"])
    assert words[0]["text"] == "zebra"
    assert words[0]["normalised"] > 0.4  # not a narrow win: the planted word carries most of the evidence
    # F(x) is scikit-learn's decision function on the independently extracted [CLS] vector.
    lm = models.load("minilm", "encoder", device="cpu")
    with torch.no_grad():
        cls_vector = lm.model(input_ids=torch.tensor([lm.tokenizer.encode(ZEBRA_TEXT).ids])).last_hidden_state[:, 0]
    decision = classifier.decision_function(scaler.transform(cls_vector.numpy()))[0]
    assert doc["output"] == pytest.approx(decision, abs=1e-3)
    assert doc["convergence"]["passed"]
    faith = doc["faithfulness"]
    assert faith["comprehensiveness_aopc"] > faith["random_comprehensiveness_aopc"]
    assert faith["sufficiency_aopc"] < faith["random_sufficiency_aopc"]
    assert faith["beats_random_comprehensiveness"] >= 0.8


def test_other_label_of_a_binary_probe_negates_the_attributions(zebra_probe):
    from bertprobe.probe import load_probe

    directory, _, _ = zebra_probe
    probe = load_probe(directory)
    lm = models.load("minilm", "encoder", device="cpu")
    settings = AttributionSettings(method="occlusion", faithfulness=False)
    zebra = attribute_probe(lm, ZEBRA_TEXT, probe, settings=settings)
    other = attribute_probe(lm, ZEBRA_TEXT, probe, label="OTHER", settings=settings)
    assert other.target.label == "other" and not other.target.predicted and other.target.rank == 2
    assert other.output == pytest.approx(-zebra.output, abs=1e-4)
    assert [t.attribution for t in other.tokens] == pytest.approx([-t.attribution for t in zebra.tokens], abs=1e-4)


def test_pooler_probe_on_a_half_precision_model_reads_what_cls_train_read(tmp_path):
    """The pooler's weights are in the model's dtype: cls-train feeds it hidden states in that dtype, so must this."""
    import numpy as np

    from bertprobe.featcache import extract_pooled
    from bertprobe.probe import load_probe, save_probe

    lm = models.load("minilm", "encoder", device="cpu", dtype="bfloat16")
    rng = np.random.default_rng(0)
    meta = {"model": "minilm", "revision": None, "fingerprint": lm.fingerprint, "layer": lm.num_layers,
            "pooling": "pooler", "max_length": 128, "labels": ["no", "yes"], "metrics": {}}  # fmt: skip
    saved = save_probe(tmp_path / "pooler", rng.normal(size=(1, 384)), [0.1], np.zeros(384), np.ones(384), meta)
    probe = load_probe(saved)
    settings = AttributionSettings(method="occlusion", random_orders=2)
    result = attribute_probe(lm, ZEBRA_TEXT, probe, label="yes", settings=settings)
    features = extract_pooled(lm, [lm.tokenizer.encode(ZEBRA_TEXT)], [(lm.num_layers, "pooler")])
    logits = probe.logits(features[(lm.num_layers, "pooler")])[0]
    assert result.output == pytest.approx(float(logits[1] - logits[0]), abs=1e-4)


def test_probe_of_another_model_and_unknown_label_are_refused(cli, zebra_probe, mlm_path):
    directory, _, _ = zebra_probe
    code, stdout, stderr = cli("attribute", "a zebra", "--probe", directory, "-m", mlm_path)
    assert code == 1 and stdout == "" and "trained on minilm" in stderr and "Traceback" not in stderr
    code, _, stderr = cli("attribute", "a zebra", "--probe", directory, "--label", "giraffe")
    assert code == 1 and "'other', 'zebra'" in stderr
    code, _, stderr = cli("attribute", "a zebra", "--probe", directory, "--target", "mat")
    assert code == 1 and "two different questions" in stderr


# --------------------------------------------------------------------------------------------
# The command: JSON, table, HTML, errors
# --------------------------------------------------------------------------------------------


def test_json_echoes_what_reproduces_the_result(cli, mlm_path):
    code, stdout, _ = cli(
        "attribute", SENTENCE, "-m", mlm_path, "--target", "garden", "--steps", 8, "--seed", 7, "--json"
    )
    assert code == 0
    doc = json.loads(stdout)  # stdout is the JSON document and nothing else
    assert doc["model"] == str(mlm_path) and "revision" in doc and doc["seed"] == 7
    assert doc["method"] == "ig" and doc["baseline"] == "pad" and doc["steps"] == 8
    assert doc["target"]["kind"] == "fill-mask" and doc["target"]["label"] == "garden"
    assert [t["token"] for t in doc["tokens"]][:3] == ["[CLS]", "the", "cat"]
    again = json.loads(
        cli("attribute", SENTENCE, "-m", mlm_path, "--target", "garden", "--steps", 8, "--seed", 7, "--json")[1]
    )
    assert again["faithfulness"] == doc["faithfulness"]  # the random orders come from --seed


def test_table_shows_target_tokens_and_verdicts_even_odd_pieces(cli, tiny_pretraining_path):
    code, stdout, _ = cli("attribute", "a [MASK] b c d", "-m", tiny_pretraining_path, "--json", "--steps", 8)
    target = json.loads(stdout)["target"]["label"]  # a random model predicts pieces like [unused12]
    code, table, _ = cli("attribute", "a [MASK] b c d", "-m", tiny_pretraining_path, "--steps", 8)
    assert code == 0
    assert repr(target) in table
    for piece in ("a", "b", "c", "d"):
        assert f"│ {piece} " in table
    assert "completeness" in table and "within 5%" in table
    assert "comprehensiveness" in table and "sufficiency" in table


def test_html_page_is_standalone_and_escaped(cli, mlm_path, tmp_path):
    page = tmp_path / "attribution.html"
    text = "The <b>cat</b> & the [MASK] sat."
    code, stdout, _ = cli("attribute", text, "-m", mlm_path, "--steps", 8, "--html", page, "--json")
    assert code == 0 and json.loads(stdout)["text"] == text
    content = page.read_text(encoding="utf-8")
    assert content.startswith("<!DOCTYPE html>")
    assert "<b>cat</b>" not in content and "&lt;" in content and "&amp;" in content
    for external in ("<script", "<link", "@import", "@font-face", "url(", "http://", "https://"):
        assert external not in content
    assert "comprehensiveness" in content and "within 5%" in content
    code, _, stderr = cli("attribute", text, "-m", mlm_path, "--steps", 2, "--html", tmp_path / "no" / "x.html")
    assert code == 1 and "cannot write" in stderr


def test_method_choices_come_from_the_registry(cli, mlm_path):
    from bertprobe.attribute import get_method
    from bertprobe.cli.attribute import MethodChoice
    from bertprobe.errors import InputError

    assert [m.value for m in MethodChoice] == list(METHODS) == ["ig", "saliency", "occlusion"]
    code, _, stderr = cli("attribute", SENTENCE, "-m", mlm_path, "--method", "lime")
    assert code == 2 and all(name in stderr for name in METHODS)
    with pytest.raises(InputError, match="known methods: ig, saliency, occlusion"):
        get_method("lime")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("The cat sat on the mat.",), "no mask token"),
        ((SENTENCE, "--target", "hippopotamuses"), "word pieces"),
        # Written in the slot these read "mats" and "[UNK]": neither is the word asked about.
        (("The cat sat on the [MASK]s.", "--target", "mat"), "merges with the text next to the mask"),
        ((SENTENCE, "--target", "\U0001f600"), "not in the vocabulary"),
        ((SENTENCE, "--mask", 2), "no mask 2"),
        (("[MASK]",), "no word pieces to attribute"),
        ((SENTENCE, "--label", "positive"), "no --probe"),
        (("word " * 80 + "[MASK]",), "reads at most 64"),
    ],
)
def test_user_errors_are_one_line_and_exit_1(cli, tiny_pretraining_path, args, message):
    code, stdout, stderr = cli("attribute", *args, "-m", tiny_pretraining_path, "--steps", 2)
    assert code == 1 and stdout == ""
    assert stderr.startswith("error:") and message in stderr and "hint:" in stderr
    assert "Traceback" not in stderr


def test_encoder_only_model_has_nothing_to_fill(cli):
    code, _, stderr = cli("attribute", SENTENCE, "-m", "minilm")
    assert code == 1 and "has no MLM head" in stderr


def test_mps_work_runs_on_a_cpu_copy(mlm_path):
    import dataclasses

    from bertprobe import models
    from bertprobe.attribute import _prepare_device, attribution_device

    assert attribution_device(torch.device("mps")) == torch.device("cpu")
    assert attribution_device(torch.device("cpu")) == torch.device("cpu")
    # A model said to be on MPS (this machine has none): attribution works on a CPU copy and the
    # cached model is left as it was for the next command.
    cached = dataclasses.replace(models.load(str(mlm_path), head="mlm", device="cpu"), device=torch.device("mps"))
    moved, notices = _prepare_device(cached)
    assert moved.device == torch.device("cpu") and "float64" in notices[0]
    assert moved.model is not cached.model and cached.device == torch.device("mps")
    ids = torch.tensor([[101, 2023, 103, 102]])
    with torch.inference_mode():
        a = moved.backend.forward(input_ids=ids).last_hidden_state
        b = cached.backend.forward(input_ids=ids).last_hidden_state
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("loaded", ["for inference", "trainable"])
def test_attribute_never_touches_the_models_parameters(tiny_pretraining_path, loaded):
    """Gradients go to the input embeddings only: no parameter's requires_grad is switched, even while it runs,
    and no .grad is written, whether the model was loaded for inference (no gradients) or for training."""
    if loaded == "for inference":
        lm = models.load(str(tiny_pretraining_path), "mlm", device="cpu")
    else:
        lm = models.load_trainable(str(tiny_pretraining_path), device="cpu")
    parameters = list(lm.model.parameters())
    before = [p.requires_grad for p in parameters]
    assert set(before) == {loaded == "trainable"}  # inference models are loaded without parameter gradients
    seen_while_running = set()
    hook = lm.backend.lowest_modules(1)[-1].register_forward_hook(  # the first encoder layer
        lambda *_: seen_while_running.add(tuple(p.requires_grad for p in parameters))
    )
    try:
        for method in ("ig", "saliency"):
            settings = AttributionSettings(method=method, steps=4, faithfulness=False)
            result = attribute_fill_mask(lm, SENTENCE, target="garden", settings=settings)
            assert any(t.attribution for t in result.tokens)
    finally:
        hook.remove()
    assert seen_while_running == {tuple(before)}
    assert [p.requires_grad for p in parameters] == before
    assert all(p.grad is None for p in parameters)


def test_target_is_the_piece_the_word_becomes_in_the_mask_slot(family_path):
    from transformers import AutoTokenizer

    from bertprobe.fillmask import fill_masks

    path = family_path("roberta")
    lm = models.load(str(path), "mlm", device="cpu")
    tok = AutoTokenizer.from_pretrained(str(path))
    text = "the cat sat on the <mask> and the dog"
    settings = AttributionSettings(method="saliency", faithfulness=False)
    for word in ("the", "mat"):
        result = attribute_fill_mask(lm, text, target=word, settings=settings)
        # After a space byte-level BPE writes "Ġthe", not the sentence-initial "the".
        (expected,) = tok(" " + word, add_special_tokens=False)["input_ids"]
        assert result.target.index == expected and result.target.label == "Ġ" + word
        scored = fill_masks(lm, [text], targets=[word])[0].targets[0].targets[0]
        assert scored.pieces[0].token_id == expected  # fillmask --targets scores the same piece
    start = attribute_fill_mask(lm, "<mask> cat sat on the mat", target="the", settings=settings)
    assert start.target.label == "the"


@pytest.mark.parametrize("kind", ["roberta", "xlm-roberta", "albert"])
def test_target_is_explained_only_when_fillmask_writes_it_as_one_piece(family_path, kind):
    """A word the slot holds as a lone space mark and a continuation piece ("Ġ" "x") is two pieces: explaining the
    continuation piece alone would explain "thex", not "the x"."""
    from bertprobe.errors import InputError
    from bertprobe.fillmask import fill_masks

    lm = models.load(str(family_path(kind)), "mlm", device="cpu")
    text = f"the cat sat on the {lm.tokenizer.mask_token} and the dog"
    settings = AttributionSettings(method="saliency", faithfulness=False)
    refused = 0
    for word in ("the", "mat", "cat", "x", "q"):
        try:
            pieces = [p.token_id for p in fill_masks(lm, [text], targets=[word])[0].targets[0].targets[0].pieces]
        except InputError:
            pieces = []
        if len(pieces) == 1 and pieces != [lm.tokenizer.token_to_id(lm.tokenizer.unk_token)]:
            assert attribute_fill_mask(lm, text, target=word, settings=settings).target.index == pieces[0]
        else:
            refused += 1
            with pytest.raises(InputError):
                attribute_fill_mask(lm, text, target=word, settings=settings)
    assert refused  # the fixtures' small vocabularies split some of these words


def test_faithfulness_reading_when_one_piece_leaves_nothing_to_rank(cli, mlm_path):
    code, table, _ = cli("attribute", "[MASK] dog", "-m", mlm_path, "--steps", 8)
    assert code == 0
    squashed = " ".join(table.split())
    assert "beats only" not in squashed and "faithfulness cannot judge this ranking" in squashed


def test_attribute_input_names_a_line_with_nothing_to_explain_before_any_work(cli, mlm_path, tmp_path):
    # A zero-width space beside the mask leaves nothing but [CLS] [MASK] [SEP]: no word piece to attribute.
    corpus = tmp_path / "texts.txt"
    corpus.write_text("The cat sat on the [MASK].\n\u200b [MASK]\n", encoding="utf-8")
    code, stdout, stderr = cli("attribute", "--input", corpus, "--steps", 4, "-m", mlm_path)
    message = stderr.replace("\n", " ")
    assert code == 1 and stdout == "" and "Traceback" not in stderr
    assert "line 2: the text holds no word pieces to attribute" in message and "nothing was computed" in message
    code, stdout, stderr = cli(
        "attribute", "--input", corpus, "--steps", 4, "--on-bad", "skip", "--json", "-m", mlm_path
    )
    assert code == 0, stderr
    assert [(d["index"], d["line"]) for d in map(json.loads, stdout.splitlines())] == [(1, 1)]


def test_attribute_input_names_a_line_longer_than_the_probe_reads(cli, zebra_probe, tmp_path):
    from bertprobe.probe import load_probe, save_probe

    saved = load_probe(zebra_probe[0])
    short = save_probe(
        tmp_path / "short", saved.coef.numpy(), saved.intercept.numpy(), saved.mean.numpy(), saved.scale.numpy(),
        {**saved.meta, "max_length": 8},
    )  # fmt: skip
    corpus = tmp_path / "texts.txt"
    corpus.write_text("a zebra slept\na tired zebra and a horse slept near the quiet school\n")
    code, stdout, stderr = cli("attribute", "--input", corpus, "--probe", short, "--steps", 4)
    message = stderr.replace("\n", " ")
    assert code == 1 and stdout == "" and "Traceback" not in stderr
    assert "line 2: 13 word pieces long; the probe was trained on texts cut at 8" in message


def test_a_delta_passed_at_rounding_level_is_not_read_as_within_five_percent(mlm_path):
    """F(x) all but equal to F(baseline): a 1e-7 delta is 300% of the difference, and passes as rounding."""
    import dataclasses

    from bertprobe.attribute import Convergence
    from bertprobe.render.attribute import completeness_lines

    lm = models.load(str(mlm_path), "mlm", device="cpu")
    result = attribute_fill_mask(lm, SENTENCE, settings=AttributionSettings(steps=4, faithfulness=False))
    near_zero = Convergence(delta=3e-7, difference=1e-7, relative=3.0, tolerance=0.05, passed=True, steps=4, tries=[])
    lines = " ".join(line.plain for line in completeness_lines(dataclasses.replace(result, convergence=near_zero)))
    assert "300.00% of |F(x) - F(baseline)|" in lines and "within 5%" not in lines and "float rounding" in lines
    close = dataclasses.replace(near_zero, delta=1e-3, difference=1.0, relative=1e-3)
    lines = " ".join(line.plain for line in completeness_lines(dataclasses.replace(result, convergence=close)))
    assert "within 5%" in lines and "rounding" not in lines


def test_html_page_ends_with_the_readings_of_its_numbers(mlm_path):
    # The terminal view closes with plain-words readings; the --html view of the same result must too.
    import html

    from bertprobe.render.attribute import readings, to_html

    lm = models.load(str(mlm_path), "mlm", device="cpu")
    result = attribute_fill_mask(lm, "The 'cat' <sat> on the [MASK].", settings=AttributionSettings(steps=1))
    page = to_html(result)
    tail = page[page.rindex("</table>") :]
    lines = readings(result)
    assert len(lines) >= 2 and all(html.escape(line, quote=True) in tail for line in lines)
    assert "<sat>" not in page


def test_beats_random_is_not_rounded_up_to_every_order(mlm_path):
    # 999 of 1,000 random orders beaten is not "at least 100%" of them.
    import dataclasses

    from rich.console import Console

    from bertprobe.render.attribute import _faithfulness_table, readings

    lm = models.load(str(mlm_path), "mlm", device="cpu")
    result = attribute_fill_mask(lm, SENTENCE, settings=AttributionSettings(steps=4, random_orders=3))
    faith = dataclasses.replace(
        result.faithfulness, random_orders=1000, beats_random_comprehensiveness=0.999, beats_random_sufficiency=1.0
    )
    result = dataclasses.replace(result, faithfulness=faith)
    said = " ".join(readings(result))
    assert "at least 99.9% of random orders" in said and "100%" not in said
    console = Console(record=True, width=120)
    console.print(_faithfulness_table(result))
    assert "99.9%" in console.export_text()


# --------------------------------------------------------------------------------------------
# A probe that cannot see the text: the [CLS] vector of layer 0 (the embedding output) is the same whatever
# the other word pieces are, so every attribution is exactly 0 and no removal changes the probability.
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blind_probe_result(tmp_path_factory):
    import numpy as np

    from bertprobe.probe import load_probe, save_probe

    lm = models.load("minilm", "encoder", device="cpu")
    rng = np.random.default_rng(0)
    meta = {"model": "minilm", "revision": None, "fingerprint": lm.fingerprint, "layer": 0,
            "pooling": "cls", "max_length": 128, "labels": ["no", "yes"], "metrics": {}}  # fmt: skip
    saved = save_probe(tmp_path_factory.mktemp("blind"), rng.normal(size=(1, 384)), [0.1], np.zeros(384),
                       np.ones(384), meta)  # fmt: skip
    settings = AttributionSettings(steps=8, random_orders=4)
    return attribute_probe(lm, ZEBRA_TEXT, load_probe(saved), settings=settings)


def test_a_score_the_text_cannot_move_passes_completeness_at_float_rounding(blind_probe_result):
    # F(x) and F(baseline) are ~10 and differ only by float32 noise between the two rows of one batch (a few
    # units in the last place, ~5e-6): the exact zeros Integrated Gradients returns are not "not converged".
    result = blind_probe_result
    assert all(t.attribution == 0.0 for t in result.tokens)
    assert abs(result.output) > 1 and abs(result.output - result.baseline_output) < 1e-4
    assert result.convergence.passed
    assert not any("did not converge" in notice for notice in result.notices)
    from bertprobe.render.attribute import completeness_lines, readings

    lines = " ".join(line.plain for line in completeness_lines(result))
    assert "float rounding" in lines and "not trustworthy" not in lines
    assert not any("do not add up" in line for line in readings(result))


def test_reading_names_no_piece_when_every_attribution_is_zero(blind_probe_result):
    from bertprobe.render.attribute import readings

    said = " ".join(readings(blind_probe_result))
    assert "leans most on" not in said and "raises it" not in said
    assert "every word piece's attribution is 0" in said.lower()


def test_faithfulness_tie_is_not_blamed_on_one_piece_when_there_are_many(blind_probe_result):
    # Eleven word pieces: the random orders remove different pieces, they only change the probability alike.
    from bertprobe.render.attribute import readings

    said = " ".join(readings(blind_probe_result))
    assert "faithfulness cannot judge this ranking" in said
    assert "every order removes the same pieces" not in said


def test_unconverged_reading_after_the_auto_steps_cap_does_not_advise_auto_steps(mlm_path):
    import dataclasses

    from bertprobe.attribute import Convergence, StepTry
    from bertprobe.render.attribute import readings

    lm = models.load(str(mlm_path), "mlm", device="cpu")
    result = attribute_fill_mask(lm, SENTENCE, settings=AttributionSettings(steps=1, faithfulness=False))
    capped = Convergence(delta=0.5, difference=1.0, relative=0.5, tolerance=0.05, passed=False, steps=2,
                         tries=[StepTry(1, 0.9, 0.9), StepTry(2, 0.5, 0.5)], auto_steps=True, max_steps=2)  # fmt: skip
    said = " ".join(readings(dataclasses.replace(result, convergence=capped)))
    assert "--max-steps" in said and "use --auto-steps" not in said and "rerun with --auto-steps" not in said
    single = dataclasses.replace(capped, tries=[StepTry(2, 0.5, 0.5)], auto_steps=False, max_steps=800)
    assert "--auto-steps" in " ".join(readings(dataclasses.replace(result, convergence=single)))


def test_saliency_does_not_claim_a_baseline_it_never_used(cli, mlm_path, tmp_path):
    # Gradient x input has no baseline: --baseline changes nothing, so the view must not say one was used.
    runs = {}
    for baseline in ("pad", "mask"):
        args = ("attribute", SENTENCE, "-m", mlm_path, "--method", "saliency", "--no-faithfulness")
        code, stdout, _ = cli(*args, "--baseline", baseline, "--json")
        runs[baseline] = [t["attribution"] for t in json.loads(stdout)["tokens"]]
    assert runs["pad"] == runs["mask"]
    page = tmp_path / "saliency.html"
    code, table, stderr = cli(*args, "--baseline", "mask", "--html", page)
    assert code == 0 and "--baseline applies to ig and occlusion" in stderr
    squashed = " ".join(table.split())
    assert "baseline: mask" not in squashed and "baseline: none" in squashed and "F(baseline)" not in squashed
    content = page.read_text(encoding="utf-8")
    assert "baseline: mask" not in content and "baseline: none" in content and "F(baseline)" not in content
    assert "the same in the baseline" not in content
    code, table, stderr = cli(*args)
    assert "--baseline applies" not in stderr  # the default is not a choice the user made
    code, table, _ = cli(*args, "--explain")
    squashed = " ".join(table.split())
    assert "measured against the baseline input" not in squashed and "no baseline input" in squashed


def test_a_small_target_probability_is_not_shown_as_zero(cli, mlm_path, tmp_path):
    # 'quantum' has p ~ 2e-7 at this mask: "p = 0.0000" would read as impossible.
    page = tmp_path / "rare.html"
    args = ("attribute", SENTENCE, "-m", mlm_path, "--target", "quantum", "--method", "saliency")
    code, stdout, _ = cli(*args, "--no-faithfulness", "--json")
    probability = json.loads(stdout)["target"]["probability"]
    assert 0 < probability < 5e-5
    code, table, _ = cli(*args, "--no-faithfulness", "--html", page)
    assert code == 0
    for shown in (" ".join(table.split()), page.read_text(encoding="utf-8")):
        assert "p = 0.0000" not in shown and f"p = {probability:.2e}" in shown


def test_random_orders_that_tie_the_ranking_are_not_read_as_beating_it(cli, mlm_path):
    # Two word pieces: about half the random orders are the attribution's own order and tie it; the ranking beats
    # every other one. "beats only 45%: not the reason for the score" would misread a ranking nothing does better.
    code, stdout, _ = cli("attribute", "the [MASK] dog", "-m", mlm_path, "--steps", 16, "--json")
    assert code == 0
    faith = json.loads(stdout)["faithfulness"]
    for check in ("comprehensiveness", "sufficiency"):
        beats, ties = faith[f"beats_random_{check}"], faith[f"ties_random_{check}"]
        assert 0 < ties < 1 and beats + ties == pytest.approx(1.0)
    code, table, _ = cli("attribute", "the [MASK] dog", "-m", mlm_path, "--steps", 16)
    assert code == 0
    squashed = " ".join(table.split())
    assert "not as the reason for the score" not in squashed
    assert f"ties {faith['ties_random_comprehensiveness']:.0%}" in squashed and "loses to 0%" in squashed


def test_views_say_a_words_score_is_its_pieces_summed(mlm_path):
    # Words are coloured (and listed in --html) by the sum of their word pieces: the views must say so.
    from rich.console import Console

    from bertprobe.render.attribute import attribution_view, to_html

    lm = models.load(str(mlm_path), "mlm", device="cpu")
    text = "An unbelievably [MASK] story about hippopotamuses."
    result = attribute_fill_mask(lm, text, settings=AttributionSettings(steps=4, faithfulness=False))
    assert any(len(w.pieces) > 1 for w in result.words)
    console = Console(record=True, width=200)
    attribution_view(result, console)
    assert "a word: its pieces summed" in console.export_text()
    assert "word pieces' attributions summed" in to_html(result)


def test_attribute_input_summary_marks_the_rows_that_did_not_converge(cli, mlm_path, tmp_path, monkeypatch):
    # With many texts the "did not converge" notices do not say which text: the row itself must.
    corpus = tmp_path / "texts.txt"
    corpus.write_text("The cat sat on the [MASK].\nA dog barked at the [MASK] all night long.\n[MASK] .\n")
    out = tmp_path / "out.jsonl"
    monkeypatch.setenv("COLUMNS", "250")  # one table line per row
    code, stdout, stderr = cli("attribute", "--input", corpus, "--steps", 1, "--out", out, "-m", mlm_path)
    assert code == 0, stderr
    passed = [json.loads(line)["convergence"]["passed"] for line in out.read_text().splitlines()]
    assert not all(passed)  # one integration step: at least one text is off
    rows = [line for line in stdout.splitlines() if line.startswith("│")]
    assert ["NOT converged" in row for row in rows] == [not p for p in passed]
    assert "[MASK] +" not in stdout  # a word held fixed is no top word


def test_mask_with_a_probe_is_refused_not_ignored(cli, zebra_probe):
    # A probe reads the whole text: --mask 2 picked nothing and was dropped without a word.
    directory, _, _ = zebra_probe
    code, stdout, stderr = cli("attribute", "A striped zebra [MASK] here.", "--probe", directory, "--mask", 2)
    assert code == 1 and stdout == "" and "--mask picks the [MASK]" in stderr and "hint:" in stderr
    import bertprobe
    from bertprobe.errors import InputError

    with pytest.raises(InputError, match="--mask picks the"):
        bertprobe.attribute("A striped zebra.", probe=directory, mask=2)


def test_a_tiny_attribution_is_not_shown_as_zero_in_the_table_or_the_page(mlm_path):
    import dataclasses

    from rich.console import Console

    from bertprobe.render.attribute import _tokens_table, to_html

    lm = models.load(str(mlm_path), "mlm", device="cpu")
    result = attribute_fill_mask(lm, SENTENCE, settings=AttributionSettings(steps=4, faithfulness=False))
    free = next(i for i, t in enumerate(result.tokens) if not t.fixed)
    tokens = list(result.tokens)
    tokens[free] = dataclasses.replace(tokens[free], attribution=-3e-5)
    result = dataclasses.replace(result, tokens=tokens)
    console = Console(record=True, width=160)
    console.print(_tokens_table(result))
    assert "-3.00e-05" in console.export_text() and "-0.0000" not in console.export_text()
    page = to_html(result)
    assert "-3.00e-05" in page and "-0.0000" not in page
