"""pretrain continues any masked LM of the BERT family, through transformers' Auto classes.

RoBERTa, DistilBERT, ALBERT, ELECTRA's generator and XLM-R (tiny random checkpoints with tokenizers
of their own kind, built offline in tests/family.py), and BERT with ``BERTPROBE_BACKEND=transformers``.
References: transformers' own ``from_pretrained`` and fill-mask pipeline, and one hand-written
transformers + torch.optim training step.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import family

from bertprobe import models, pretrain
from bertprobe.errors import InputError

CORPUS = family.CORPUS[:6]
STORY = ["the cat sat on the mat .", "the dog sat on the rug .", "", "a river bank is muddy .", "we sat on the bank ."]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(CORPUS) + "\n")
    return path


def _settings(source, corpus, out, **overrides):
    values = dict(source=str(source), corpus=[str(corpus)], out=str(out), steps=2, batch_size=4, lr=3e-3,
                  max_length=24, seed=0, probes=["the cat sat on the [MASK] and the dog"])  # fmt: skip
    values.update(overrides)
    return pretrain.PretrainSettings(**values)


def _remember_models(monkeypatch) -> list:
    """The models pretrain trains, kept for the test to compare with what was saved."""
    trained = []
    real = models.load_trainable

    def load_and_remember(*args, **kwargs):
        lm = real(*args, **kwargs)
        trained.append(lm)
        return lm

    monkeypatch.setattr(models, "load_trainable", load_and_remember)
    return trained


@pytest.mark.parametrize("kind", [*family.FAMILY, "bert"])
def test_each_family_trains_freezes_its_lowest_layers_and_loads_back_identical(
    family_path, tiny_pretraining_path, corpus, tmp_path, monkeypatch, kind
):
    import torch
    from transformers import AutoModelForMaskedLM

    if kind == "bert":
        monkeypatch.setenv("BERTPROBE_BACKEND", "transformers")
    source = tiny_pretraining_path if kind == "bert" else family_path(kind)
    trained = _remember_models(monkeypatch)
    out = tmp_path / "run"
    freeze = 2 if kind == "albert" else 1  # ALBERT's two layers share one set of weights
    result = pretrain.pretrain(_settings(source, corpus, out, freeze_layers=freeze), device="cpu")
    (lm,) = trained
    assert not lm.native and result.steps == 2 and result.final_loss is not None
    assert result.probes_after[0].predictions  # read at the model's own mask token
    loaded, info = AutoModelForMaskedLM.from_pretrained(str(out), output_loading_info=True)
    assert not any(info.values()), info  # nothing missing, unexpected or mismatched
    assert type(loaded) is type(lm.model)
    ours = lm.model.state_dict()
    theirs = loaded.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
    before = AutoModelForMaskedLM.from_pretrained(str(source)).state_dict()
    frozen = [k for k in before if "embeddings" in k or ".layer.0." in k or "albert_layer_groups" in k]
    trainable = [k for k in before if ".layer.1." in k]
    assert frozen and all(torch.equal(before[k], theirs[k]) for k in frozen)
    assert kind == "albert" or any(not torch.equal(before[k], theirs[k]) for k in trainable)
    assert any(not torch.equal(before[k], theirs[k]) for k in before if k not in frozen)


def test_albert_refuses_to_freeze_part_of_its_shared_layers(family_path, corpus, tmp_path):
    with pytest.raises(InputError, match="shares one set of weights") as refused:
        pretrain.pretrain(_settings(family_path("albert"), corpus, tmp_path / "x", freeze_layers=1), device="cpu")
    assert refused.value.hint and not (tmp_path / "x").exists()


def test_one_step_on_roberta_equals_a_hand_written_transformers_step(family_path, corpus, tmp_path):
    """Same masks (checked against transformers' tokenizer), dropout on, AdamW: the weights agree."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    path = family_path("roberta")
    settings = _settings(path, corpus, tmp_path / "run", steps=1, warmup=0.0, lr=1e-3, probes=[])
    result = pretrain.pretrain(settings, device="cpu")
    lm = models.load_trainable(str(path), device="cpu")
    data = pretrain.TrainingData(lm, pretrain.read_corpus(settings.corpus), 24, seed=0, rate=0.15, nsp=False)
    batch = data.batch(0, settings.batch_size)
    tok = AutoTokenizer.from_pretrained(str(path))
    selected = batch.labels != -100
    for row, (epoch, position) in enumerate(batch.examples):
        line = CORPUS[int(data.order(epoch)[position])]
        expected = tok(line)["input_ids"]
        length = len(expected)
        original = torch.where(selected[row], batch.labels[row], batch.input_ids[row])[:length]
        assert original.tolist() == expected  # the tokenizer's own framing (<s> ... </s>)
        assert not set(original[selected[row][:length]].tolist()) & set(tok.all_special_ids)
        shown = batch.input_ids[row][selected[row]]
        assert set(shown.tolist()) <= {tok.mask_token_id} | (set(range(len(tok))) - set(tok.all_special_ids))
    assert (batch.input_ids[selected] == tok.mask_token_id).float().mean() > 0.5  # 80% <mask>

    reference = AutoModelForMaskedLM.from_pretrained(str(path)).train()
    decay = [p for p in reference.parameters() if p.ndim >= 2]
    rest = [p for p in reference.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                                  lr=1e-3, betas=(0.9, 0.999), eps=1e-8)  # fmt: skip
    torch.manual_seed(0)  # the run's --seed: the same dropout masks
    loss = reference(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(reference.parameters(), 1.0)
    optimizer.step()
    assert result.first_loss == pytest.approx(loss.item(), abs=1e-5)
    trained = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "run")).state_dict()
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(trained[key], value, atol=2e-6, rtol=0, msg=key)


def test_nsp_is_refused_in_one_line_for_families_pretrained_without_it(cli, family_path, corpus, tmp_path):
    for kind, why in (("roberta", "RoBERTa dropped next-sentence prediction"), ("albert", "sentence-order")):
        code, _, stderr = cli("pretrain", "--from", family_path(kind), "--corpus", corpus, "--out", tmp_path / kind,
                              "--steps", 2, "--nsp")  # fmt: skip
        assert code == 1 and why in stderr and "--nsp" in stderr and "Traceback" not in stderr, stderr
        assert len(stderr.strip().splitlines()) == 2  # the line and its hint
        assert not (tmp_path / kind).exists()


def test_bert_through_transformers_learns_nsp_into_a_pretraining_checkpoint(
    tiny_pretraining_path, tmp_path, monkeypatch
):
    from transformers import BertForPreTraining

    monkeypatch.setenv("BERTPROBE_BACKEND", "transformers")
    story = tmp_path / "story.txt"
    story.write_text("\n".join(STORY) + "\n")
    trained = _remember_models(monkeypatch)
    out = tmp_path / "run"
    result = pretrain.pretrain(_settings(tiny_pretraining_path, story, out, steps=3, nsp=True), device="cpu")
    assert not trained[0].native and result.nsp_pairs == 2 and result.nsp_accuracy is not None
    assert json.loads((out / "config.json").read_text())["architectures"] == ["BertForPreTraining"]
    _, info = BertForPreTraining.from_pretrained(str(out), output_loading_info=True)
    assert not any(info.values()), info


def test_roberta_run_killed_at_a_write_then_resumed_ends_identical(family_path, corpus, tmp_path):
    import torch
    from safetensors.torch import load_file

    path = family_path("roberta")
    args = ["pretrain", "--from", str(path), "--corpus", str(corpus), "--steps", "6", "--save-steps", "2",
            "--batch-size", "4", "--lr", "3e-3", "--max-length", "24", "--probe",
            "the cat sat on the [MASK]"]  # fmt: skip
    settings = dict(steps=6, save_steps=2, probes=["the cat sat on the [MASK]"])
    straight = tmp_path / "straight"
    pretrain.pretrain(_settings(path, corpus, straight, **settings), device="cpu")
    out = tmp_path / "run"
    env = {**os.environ, "BERTPROBE_TEST_KILL_AFTER": "pretrain-checkpoint-prune",  # the save of step 4
           "PYTHONPATH": str(Path(pretrain.__file__).parents[1])}  # fmt: skip
    killed = subprocess.run([sys.executable, "-m", "bertprobe", *args, "--out", str(out)], env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [step for step, _ in pretrain.checkpoints(out)] == [4]
    rerun = pretrain.pretrain(_settings(path, corpus, out, **settings), device="cpu")
    assert rerun.resumed and rerun.start_step == 4 and rerun.steps == 6
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    mine, reference = load_file(str(out / "model.safetensors")), load_file(str(straight / "model.safetensors"))
    assert mine.keys() == reference.keys()
    for key in reference:
        assert torch.equal(mine[key], reference[key]), key


def test_cli_pretrains_roberta_then_fillmask_runs_on_the_result(cli, family_path, corpus, tmp_path):
    from transformers import pipeline

    out = tmp_path / "run"
    code, stdout, stderr = cli("pretrain", "--from", family_path("roberta"), "--corpus", corpus, "--out", out,
                               "--steps", 4, "--batch-size", 4, "--lr", 3e-3, "--json",
                               "--probe", "the cat sat on the [MASK]")  # fmt: skip
    assert code == 0, stderr
    assert json.loads(stdout)["steps"] == 4
    text = "the cat sat on the [MASK] and the dog sat on the rug"
    code, stdout, stderr = cli("fillmask", text, "-m", out, "-k", 3, "--json")
    assert code == 0 and stderr == "", stderr
    ours = json.loads(stdout)["masks"][0]["predictions"]
    pipe = pipeline("fill-mask", model=str(out), device="cpu")
    theirs = pipe(text.replace("[MASK]", pipe.tokenizer.mask_token), top_k=3)
    assert [p["token_id"] for p in ours] == [r["token"] for r in theirs]
    for p, r in zip(ours, theirs, strict=True):
        assert p["score"] == pytest.approx(r["score"], abs=1e-6)


def test_an_encoder_only_start_gets_a_new_head_drawn_from_the_seed(family_path, tmp_path):
    """ELECTRA's discriminator has no masked-LM head: a new generator head, announced, the same for the same seed."""
    import torch

    path = family_path("electra-discriminator")
    first, again, other = (models.load_trainable(str(path), device="cpu", seed=s) for s in (0, 0, 1))
    assert any("no MLM head" in n for n in first.notices)
    head = [k for k in first.model.state_dict() if k.startswith("generator_predictions.")]
    assert head
    for key in head:
        assert torch.equal(first.model.state_dict()[key], again.model.state_dict()[key]), key
    assert any(not torch.equal(first.model.state_dict()[k], other.model.state_dict()[k]) for k in head)
    encoder = "electra.encoder.layer.0.output.dense.weight"  # read from the checkpoint, whatever the seed
    assert torch.equal(first.model.state_dict()[encoder], other.model.state_dict()[encoder])


def test_a_tokenizer_that_adds_no_special_tokens_is_refused(family_path, corpus, tmp_path):
    import shutil

    from bertprobe.errors import DataError

    path = tmp_path / "bare"
    shutil.copytree(family_path("roberta"), path)
    tokenizer = json.loads((path / "tokenizer.json").read_text())
    tokenizer["post_processor"] = None  # texts no longer come framed as <s> ... </s>
    (path / "tokenizer.json").write_text(json.dumps(tokenizer))
    with pytest.raises(DataError, match="does not frame a text as <s> text </s>"):
        pretrain.pretrain(_settings(path, corpus, tmp_path / "run"), device="cpu")
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_bert_trains_the_same_on_the_native_and_the_transformers_backend(tiny_pretraining_path, corpus, tmp_path,
                                                                         monkeypatch):  # fmt: skip
    """The same seed draws the same masks and dropout on both backends: the same losses and weights."""
    import torch
    from transformers import AutoModelForMaskedLM

    runs = {}
    for backend in ("auto", "transformers"):
        monkeypatch.setenv("BERTPROBE_BACKEND", backend)
        out = tmp_path / backend
        runs[backend] = pretrain.pretrain(_settings(tiny_pretraining_path, corpus, out, steps=3), device="cpu")
    assert runs["auto"].first_loss == pytest.approx(runs["transformers"].first_loss, abs=1e-5)
    assert runs["auto"].final_loss == pytest.approx(runs["transformers"].final_loss, abs=1e-5)
    native, through = (AutoModelForMaskedLM.from_pretrained(str(tmp_path / b)).state_dict() for b in runs)
    assert native.keys() == through.keys()
    for key in native:
        torch.testing.assert_close(native[key], through[key], atol=1e-5, rtol=0, msg=key)


def test_an_interrupted_restart_says_how_to_resume_it(cli, tiny_pretraining_path, corpus, tmp_path, monkeypatch):
    out = tmp_path / "run"
    args = ("pretrain", "--from", tiny_pretraining_path, "--corpus", corpus, "--out", out, "--batch-size", 4,
            "--max-length", 24, "--device", "cpu", "--json")  # fmt: skip
    assert cli(*args, "--steps", 2)[0] == 0
    step = pretrain._Run.step

    def ctrl_c_after_step_3(run):
        lr = step(run)
        if run.progress.step == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return lr

    monkeypatch.setattr(pretrain._Run, "step", ctrl_c_after_step_3)
    code, _, stderr = cli(*args, "--steps", 6, "--restart")
    assert code == 130
    # "a rerun of the same command" would pass --restart again and throw the 3 steps away.
    assert "a rerun without --restart resumes from step 3" in " ".join(stderr.split())
    monkeypatch.undo()
    settings = _settings(tiny_pretraining_path, corpus, out, steps=6, lr=1e-4, probes=["The cat sat on the [MASK]."])
    assert pretrain.pretrain(settings, device="cpu").start_step == 3
