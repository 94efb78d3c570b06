"""pretrain: the loss goes down, checkpoints load anywhere, bad options and directories are refused.

Interrupted and killed runs are tested at the end of this file (and for the family in test_pretrain_family.py).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from bertprobe import pretrain
from bertprobe.errors import InputError

LINES = [
    "the cat sat on the mat .",
    "the dog sat on the rug .",
    "a cat sleeps on the mat .",
    "the dog sleeps on the rug .",
] * 8


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(LINES) + "\n")
    return path


def _settings(source, corpus, out, **overrides):
    values = dict(
        source=str(source), corpus=[str(corpus)], out=str(out), steps=40, batch_size=8, lr=3e-3,
        max_length=16, seed=0, probes=["the cat sat on the [MASK] ."],
    )  # fmt: skip
    values.update(overrides)
    return pretrain.PretrainSettings(**values)


def test_loss_goes_down_and_the_checkpoint_loads_in_transformers(tiny_pretraining_path, corpus, tmp_path):
    import torch
    from transformers import AutoTokenizer, BertForMaskedLM

    out = tmp_path / "run"
    result = pretrain.pretrain(_settings(tiny_pretraining_path, corpus, out, steps=150), device="cpu")
    assert result.steps == 150 and not result.resumed
    assert result.final_loss < result.first_loss - 1.0
    model, info = BertForMaskedLM.from_pretrained(str(out), output_loading_info=True)
    assert not info["missing_keys"]
    assert set(info["unexpected_keys"]) <= {"bert.pooler.dense.weight", "bert.pooler.dense.bias"}  # kept as it was
    tok = AutoTokenizer.from_pretrained(str(out))
    batch = tok("the cat sat on the [MASK] .", return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits[0, 6]
    top = tok.convert_ids_to_tokens(logits.topk(3).indices.tolist())
    assert top == [word for word, _ in [(t.split()[0], p) for t, p in result.probes_after[0].predictions]]
    assert {"mat", "rug"} & set(top)  # the only words that ever stood there


def test_encoder_only_checkpoint_gets_a_new_head(tiny_encoder_path, corpus, tmp_path):
    result = pretrain.pretrain(_settings(tiny_encoder_path, corpus, tmp_path / "run", steps=5), device="cpu")
    assert any("no MLM head" in n for n in result.notices)
    from bertprobe.models import checkpoint_heads

    assert "mlm" in checkpoint_heads(tmp_path / "run")


def test_cli_trains_and_prints_the_summary(cli, tiny_pretraining_path, corpus, tmp_path):
    code, stdout, _ = cli("pretrain", "--from", tiny_pretraining_path, "--corpus", corpus, "--out", tmp_path / "r",
                          "--steps", 5, "--batch-size", 4, "--json")  # fmt: skip
    assert code == 0
    doc = json.loads(stdout)
    assert doc["steps"] == 5 and doc["out"] == str(tmp_path / "r") and doc["seed"] == 0
    # Every file of the model and its checkpoint is readable as any new file is (safetensors makes 0600 ones).
    umask = os.umask(0)
    os.umask(umask)
    for file in (tmp_path / "r").rglob("*"):
        if file.is_file() and not file.name.startswith("."):
            assert stat.S_IMODE(file.stat().st_mode) == 0o666 & ~umask, file
    code, table, _ = cli("fillmask", "the cat sat on the [MASK] .", "--model", tmp_path / "r")
    assert code == 0 and "top-1 fill" in table


def test_learning_rate_warms_up_then_decays():
    assert pretrain.learning_rate(1.0, 0.0, 0.1) == 0.0
    assert pretrain.learning_rate(1.0, 0.05, 0.1) == pytest.approx(0.5)
    assert pretrain.learning_rate(1.0, 0.1, 0.1) == pytest.approx(1.0)
    assert pretrain.learning_rate(1.0, 0.55, 0.1) == pytest.approx(0.5)
    assert pretrain.learning_rate(1.0, 1.0, 0.1) == 0.0


def test_cli_errors_are_one_line(cli, tiny_pretraining_path, tiny_encoder_path, corpus, tmp_path):
    code, _, stderr = cli("pretrain", "--from", tiny_pretraining_path, "--corpus", corpus, "--out", tmp_path / "x")
    assert code == 1 and "exactly one budget" in stderr
    code, _, stderr = cli("pretrain", "--from", tiny_pretraining_path, "--corpus", tmp_path / "nope.txt",
                          "--out", tmp_path / "x", "--steps", 2)  # fmt: skip
    assert code == 1 and "no such file" in stderr and "--corpus" in stderr
    # Bad numbers at the command line are usage errors: tests/test_cli_options.py.
    code, _, stderr = cli("pretrain", "--from", "minilm", "--corpus", corpus, "--out", tmp_path / "y", "--steps", 1,
                          "--probe", "no mask here")  # fmt: skip
    assert code == 1 and "no mask token" in stderr
    lone = tmp_path / "lone.txt"
    lone.write_text("the cat sat.\n\nthe dog ran.\n\nthe bird sang.\n")  # three one-line documents: no pairs
    code, _, stderr = cli("pretrain", "--from", tiny_pretraining_path, "--corpus", lone, "--out", tmp_path / "n",
                          "--steps", 1, "--nsp")  # fmt: skip
    assert code == 1 and "--nsp needs documents of two or more lines" in stderr
    assert not (tmp_path / "n").exists()  # refused before --out was created: nothing left behind
    code, _, stderr = cli("pretrain", "--from", tiny_pretraining_path, "--corpus", lone, "--out",
                          tmp_path / "new" / "deeper" / "run", "--steps", 1, "--nsp")  # fmt: skip
    assert code == 1 and "--nsp needs documents" in stderr
    assert not (tmp_path / "new").exists()  # nor the folders made for it, nor its lock file
    (tmp_path / "kept").mkdir()
    code, _, _ = cli("pretrain", "--from", "no/such/model", "--corpus", lone, "--out", tmp_path / "kept" / "run",
                     "--steps", 1, "--offline")  # fmt: skip
    assert code == 1 and list((tmp_path / "kept").iterdir()) == []  # the user's folder stays, empty as it was
    pretrain.pretrain(_settings(tiny_pretraining_path, corpus, tmp_path / "z", steps=2), device="cpu")
    with pytest.raises(InputError, match="holds a run from"):
        pretrain.pretrain(_settings(tiny_encoder_path, corpus, tmp_path / "z", steps=2), device="cpu")


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("minutes", NAN), ("minutes", INF), ("minutes", -1.0), ("minutes", 1e12),
        ("lr", INF), ("lr", NAN), ("lr", 0.0), ("lr", -1e-4), ("lr", 1e6),
        ("save_minutes", NAN), ("save_minutes", 0.0), ("save_steps", 0),
        ("steps", 0), ("steps", -5), ("steps", 10**12), ("batch_size", 0), ("batch_size", 10**9),
        ("rate", 1.0), ("rate", NAN), ("warmup", NAN), ("warmup", 2.0), ("max_length", 2),
        ("max_length", 10**6), ("seed", -1), ("seed", 2**40), ("freeze_layers", -1), ("freeze_layers", 10**4),
        ("weight_decay", NAN), ("save_dtype", "int8"),
    ],
)  # fmt: skip
def test_bad_numbers_are_refused_before_any_work_from_python_too(corpus, tmp_path, field, value):
    budget = {} if field in {"minutes", "steps"} else {"steps": 3}
    settings = pretrain.PretrainSettings(source="tiny-mlm", corpus=[str(corpus)], out=str(tmp_path / "x"),
                                         **budget, **{field: value})  # fmt: skip
    with pytest.raises(InputError) as refused:
        pretrain.pretrain(settings, device="cpu")
    assert refused.value.hint and "\n" not in refused.value.message
    assert not (tmp_path / "x").exists()  # refused before anything was written
    if field in {"max_length", "freeze_layers"}:  # the message gives the range the value missed
        assert "between" in refused.value.message


def test_nan_minutes_and_inf_lr_at_the_command_line_are_one_line_errors(cli, corpus, tmp_path):
    for option, value in (("--minutes", "nan"), ("--lr", "inf"), ("--save-steps", "0"), ("--freeze-layers", "-1")):
        budget = [] if option == "--minutes" else ["--steps", "3"]
        code, _, stderr = cli("pretrain", "--corpus", corpus, "--out", tmp_path / "x", *budget, option, value)
        assert code in (1, 2) and option in stderr and "Traceback" not in stderr, stderr
        assert not (tmp_path / "x").exists()


def test_out_is_checked_before_the_first_step(cli, tiny_pretraining_path, corpus, tmp_path):
    args = ["pretrain", "--from", tiny_pretraining_path, "--corpus", corpus, "--steps", 2]
    # the --from checkpoint itself
    before = sorted(p.name for p in tiny_pretraining_path.iterdir())
    code, _, stderr = cli(*args, "--out", tiny_pretraining_path)
    assert code == 1 and "is the --from checkpoint itself" in stderr
    assert sorted(p.name for p in tiny_pretraining_path.iterdir()) == before
    # a checkpoint that pretrain did not write
    other = tmp_path / "other"
    shutil.copytree(tiny_pretraining_path, other)
    weights = (other / "model.safetensors").read_bytes()
    code, _, stderr = cli(*args, "--out", other)
    assert code == 1 and "did not write" in stderr
    assert (other / "model.safetensors").read_bytes() == weights
    # under a file
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, stderr = cli(*args, "--out", blocker / "run")
    assert code == 1 and "cannot write to --out" in stderr and "Traceback" not in stderr
    code, _, stderr = cli(*args, "--out", blocker)
    assert code == 1 and "is a file" in stderr


def test_a_second_run_in_a_busy_out_is_refused_and_leaves_the_live_save_alone(
    cli, tiny_pretraining_path, corpus, tmp_path
):
    from bertprobe.atomic import directory_lock

    out = tmp_path / "run"
    args = ["pretrain", "--from", tiny_pretraining_path, "--corpus", corpus, "--out", out, "--steps", 2]
    assert cli(*args)[0] == 0
    saving = out / ".checkpoint-00000004.tmp"  # the first run's save in progress
    saving.mkdir()
    with directory_lock(out):  # held by the live run
        code, _, stderr = cli(*args[:-1], 4)
        assert code == 1 and "another bertprobe pretrain is writing to --out" in stderr and "Traceback" not in stderr
        assert saving.is_dir()  # not removed as the leftover of a killed save
    code, stdout, stderr = cli(*args[:-1], 4, "--json")  # that run has ended: this one resumes
    assert code == 0, stderr
    assert json.loads(stdout)["start_step"] == 2 and not saving.exists()


def test_a_damaged_or_malformed_checkpoint_is_refused_not_trusted(cli, tiny_pretraining_path, corpus, tmp_path):
    out = tmp_path / "run"
    pretrain.pretrain(_settings(tiny_pretraining_path, corpus, out, steps=3), device="cpu")
    (checkpoint,) = [path for _, path in pretrain.checkpoints(out)]
    args = ["pretrain", "--from", tiny_pretraining_path, "--corpus", corpus, "--out", out, "--steps", 6,
            "--batch-size", 8, "--lr", 3e-3, "--max-length", 16]  # fmt: skip
    weights = checkpoint / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[:-10])
    code, _, stderr = cli(*args)
    assert code == 1 and "does not match trainer_state.json" in stderr and "--restart" in stderr
    weights.write_bytes(good)
    state_file = checkpoint / "trainer_state.json"
    state = state_file.read_text()
    for broken in (b"{not json", b"[]", json.dumps({**json.loads(state), "step": "three"}).encode(), b"\xff\xfe{"):
        state_file.write_bytes(broken)
        code, _, stderr = cli(*args)
        assert code == 1 and "trainer_state.json" in stderr and len(stderr.strip().splitlines()) == 2, stderr
    state_file.write_text(state)
    code, _, stderr = cli(*args, "--corpus", corpus)
    assert code == 1 and "holds a run" in stderr  # the corpus given twice is another run
    restarted = pretrain.pretrain(_settings(tiny_pretraining_path, corpus, out, steps=3), device="cpu", restart=True)
    assert not restarted.resumed and restarted.steps == 3


def test_a_resume_refuses_an_edited_config_tokenizer_or_state(cli, tiny_pretraining_path, corpus, tmp_path):
    # A resume trains on the checkpoint's config.json and tokenizer: an edited one (hidden_act relu, a changed
    # vocabulary line) or a hand-edited step would go on training as if it were the run's own.
    out = tmp_path / "run"
    pretrain.pretrain(_settings(tiny_pretraining_path, corpus, out, steps=2, probes=[]), device="cpu")
    (checkpoint,) = [path for _, path in pretrain.checkpoints(out)]
    args = ["pretrain", "--from", tiny_pretraining_path, "--corpus", corpus, "--out", out, "--steps", 4,
            "--batch-size", 8, "--lr", 3e-3, "--max-length", 16, "--seed", 0]  # fmt: skip
    config = checkpoint / "config.json"
    vocab = checkpoint / "vocab.txt"
    state_file = checkpoint / "trainer_state.json"
    state = json.loads(state_file.read_text())
    assert {"config.json", "vocab.txt"} <= set(state["hashes"])
    edits = [
        (config, config.read_text().replace('"hidden_act": "gelu"', '"hidden_act": "relu"'), "config.json"),
        (vocab, vocab.read_text().replace("\ncat\n", "\ndog2\n", 1), "vocab.txt"),
        (state_file, json.dumps({**state, "step": 1}, indent=1) + "\n", "trainer_state.json"),
    ]
    for path, edited, named in edits:
        original = path.read_text()
        assert edited != original, named
        path.write_text(edited)
        code, _, stderr = cli(*args)
        assert code == 1 and named in stderr and "edited" in stderr and "--restart" in stderr, stderr
        assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 2, stderr
        path.write_text(original)
    code, stdout, stderr = cli(*args, "--json")  # all put back: it resumes
    assert code == 0 and json.loads(stdout)["start_step"] == 2, stderr


def test_a_resumed_run_keeps_its_base_model_and_revision(tiny_pretraining_path, corpus, tmp_path):
    out = tmp_path / "run"
    pretrain.pretrain(_settings(tiny_pretraining_path, corpus, out, steps=2, probes=[]), device="cpu")
    (checkpoint,) = [path for _, path in pretrain.checkpoints(out)]
    state_file = checkpoint / "trainer_state.json"
    state = json.loads(state_file.read_text())
    base = state["base_fingerprint"]
    assert base.startswith(str(tiny_pretraining_path)) or "#" in base
    # A run from a hub model records its commit; a resume loads the checkpoint folder, which has none.
    state["revision"] = "0123abcd"
    state[pretrain.STATE_DIGEST] = pretrain._state_digest(state)
    state_file.write_text(json.dumps(state, indent=1) + "\n")
    resumed = pretrain.pretrain(_settings(tiny_pretraining_path, corpus, out, steps=4, probes=[]), device="cpu")
    assert resumed.resumed and resumed.revision == "0123abcd"
    (checkpoint,) = [path for _, path in pretrain.checkpoints(out)]
    again = json.loads((checkpoint / "trainer_state.json").read_text())
    assert again["step"] == 4 and again["base_fingerprint"] == base and again["revision"] == "0123abcd"


def test_the_minutes_budget_counts_training_not_the_before_probes(tiny_pretraining_path, corpus, tmp_path, monkeypatch):
    real = pretrain.probe_predictions
    calls = []

    def slow(lm, texts, *args, **kwargs):
        calls.append(len(texts))
        if len(calls) == 1:
            time.sleep(2.5)  # the "before" look takes longer than the whole budget
        return real(lm, texts, *args, **kwargs)

    monkeypatch.setattr(pretrain, "probe_predictions", slow)
    settings = _settings(tiny_pretraining_path, corpus, tmp_path / "run", steps=None, minutes=0.02)
    result = pretrain.pretrain(settings, device="cpu")
    assert result.steps > 0 and 1.0 <= result.seconds < 2.4, (result.steps, result.seconds)


def test_perplexity_is_never_a_capped_figure():
    from bertprobe.render.pretrain import _perplexity

    assert pretrain.perplexity(2.0) == pytest.approx(math.exp(2.0))
    assert pretrain.perplexity(60.0) == pytest.approx(math.exp(60.0))  # was exp(50) for every loss above 50
    assert pretrain.perplexity(800.0) == math.inf
    assert _perplexity(2.0) == "7.4" and _perplexity(60.0) == "1.14e+26" and _perplexity(800.0) == "infinite"


def test_a_resume_refuses_other_settings_or_an_edited_corpus(tiny_pretraining_path, corpus, tmp_path):
    out = tmp_path / "run"
    pretrain.pretrain(_settings(tiny_pretraining_path, corpus, out, steps=2), device="cpu")
    with pytest.raises(InputError, match="other settings"):
        pretrain.pretrain(_settings(tiny_pretraining_path, corpus, out, steps=4, lr=1e-3), device="cpu")
    corpus.write_text(corpus.read_text() + "one more line .\n")
    with pytest.raises(InputError, match="corpus files changed"):
        pretrain.pretrain(_settings(tiny_pretraining_path, corpus, out, steps=4), device="cpu")


def test_a_restart_replaces_a_longer_run_and_its_rerun_resumes_the_restarted_one(
    tiny_pretraining_path, corpus, tmp_path
):
    import torch

    out = tmp_path / "run"
    pretrain.pretrain(_settings(tiny_pretraining_path, corpus, out, steps=4, batch_size=2, probes=[]), device="cpu")
    restarted = _settings(tiny_pretraining_path, corpus, out, steps=2, batch_size=2, probes=[])
    pretrain.pretrain(restarted, device="cpu", restart=True)
    assert [step for step, _ in pretrain.checkpoints(out)] == [2]  # the replaced run's checkpoint-4 is gone
    exported = _weights(out)
    rerun = pretrain.pretrain(restarted, device="cpu")  # the same command without --restart
    assert rerun.resumed and rerun.saved_step == 2 and rerun.steps == 2  # not the replaced 4-step run
    for key, tensor in _weights(out).items():
        assert torch.equal(tensor, exported[key]), key


def test_a_diverging_run_stops_without_saving_non_finite_weights(tiny_pretraining_path, corpus, tmp_path, monkeypatch):
    import torch

    out = tmp_path / "run"
    seen = []

    def blow_up(status):  # what a too-high learning rate does, two steps in
        seen.append(status.step)
        if status.step == 2:
            with torch.no_grad():
                next(iter(models_in_training)).fill_(float("inf"))

    from bertprobe import models

    real_load = models.load_trainable
    models_in_training = []

    def load_and_remember(*args, **kwargs):
        lm = real_load(*args, **kwargs)
        models_in_training.append(lm.model.get_input_embeddings().weight)
        return lm

    monkeypatch.setattr(models, "load_trainable", load_and_remember)
    with pytest.raises(pretrain.TrainingDiverged, match="the loss became nan at step 3"):
        pretrain.pretrain(_settings(tiny_pretraining_path, corpus, out, steps=10, save_steps=1), device="cpu",
                          on_status=blow_up, status_seconds=0.0)  # fmt: skip
    from safetensors.torch import load_file

    assert [step for step, _ in pretrain.checkpoints(out)] == [2]
    for _, checkpoint in pretrain.checkpoints(out):
        assert all(bool(t.isfinite().all()) for t in load_file(str(checkpoint / "model.safetensors")).values())


def test_own_adamw_and_clipping_equal_torch():
    import torch

    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.LayerNorm(16), torch.nn.Linear(16, 3))
    mine = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.LayerNorm(16), torch.nn.Linear(16, 3))
    mine.load_state_dict(reference.state_dict())

    def groups(model):
        decay = [(n, p) for n, p in model.named_parameters() if p.ndim >= 2]
        rest = [(n, p) for n, p in model.named_parameters() if p.ndim < 2]
        return decay, rest

    decay, rest = groups(reference)
    torch_opt = torch.optim.AdamW([{"params": [p for _, p in decay], "weight_decay": 0.01},
                                   {"params": [p for _, p in rest], "weight_decay": 0.0}], lr=1e-2)  # fmt: skip
    own = pretrain.AdamW([(groups(mine)[0], 0.01), (groups(mine)[1], 0.0)], lr=1e-2)
    for step in range(6):
        x = torch.randn(5, 8)
        for model in (reference, mine):
            model.zero_grad()
            (model(x) ** 2).sum().mul(10).backward()
        torch.nn.utils.clip_grad_norm_(reference.parameters(), 1.0)
        pretrain.clip_grad_norm(list(mine.parameters()), 1.0)
        for group in torch_opt.param_groups:
            group["lr"] = 1e-2 * (step + 1)
        own.lr = 1e-2 * (step + 1)
        torch_opt.step()
        own.step()
    for (name, a), b in zip(reference.named_parameters(), mine.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-7, rtol=0), name


# --- interrupted and killed runs end as the uninterrupted one -------------------------------

STORY = [
    "the cat woke up early .", "it walked to the kitchen .", "the bowl was empty .", "so it sat and waited .",
    "",
    "the dog ran to the park .", "it found a red ball .", "a boy threw the ball .", "the dog brought it back .",
    "",
    "rain fell on the town .", "people opened their umbrellas .", "the streets were wet .", "then the sun came out .",
]  # fmt: skip
RESUME_STEPS = 12


@pytest.fixture
def story(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text("\n".join(STORY) + "\n")
    return path


def _resume_args(source, corpus, out):
    return ["pretrain", "--from", str(source), "--corpus", str(corpus), "--out", str(out), "--steps",
            str(RESUME_STEPS), "--save-steps", "4", "--batch-size", "4", "--lr", "3e-3", "--max-length", "24",
            "--nsp", "--json"]  # fmt: skip


def _resume_settings(source, corpus, out):
    return _settings(source, corpus, out, steps=RESUME_STEPS, save_steps=4, batch_size=4, max_length=24, nsp=True,
                     probes=[])  # fmt: skip


def _weights(out):
    from safetensors.torch import load_file

    return load_file(str(out / "model.safetensors"))


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, tiny_pretraining_path):
    """The uninterrupted run every interrupted one must end equal to (with NSP, saving every 4 steps)."""
    root = tmp_path_factory.mktemp("straight")
    story = root / "story.txt"
    story.write_text("\n".join(STORY) + "\n")
    out = root / "run"
    result = pretrain.pretrain(_resume_settings(tiny_pretraining_path, story, out), device="cpu")
    return result, _weights(out)


def _assert_same_weights(out, reference):
    import torch

    mine = _weights(out)
    assert mine.keys() == reference.keys()
    for key in reference:
        assert torch.equal(mine[key], reference[key]), key


def test_the_straight_run_learns_nsp_and_saves_a_pretraining_checkpoint(straight_run, tmp_path):
    result, weights = straight_run
    assert result.steps == RESUME_STEPS and result.nsp_pairs == 9 and result.nsp_accuracy is not None
    assert {"cls.seq_relationship.weight", "bert.pooler.dense.weight"} <= weights.keys()
    out = Path(result.out)
    assert json.loads((out / "config.json").read_text())["architectures"] == ["BertForPreTraining"]
    from transformers import BertForPreTraining

    _, info = BertForPreTraining.from_pretrained(str(out), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert [step for step, _ in pretrain.checkpoints(out)] == [RESUME_STEPS]  # older ones pruned


def test_ctrl_c_saves_after_the_step_and_the_rerun_ends_identical(straight_run, tiny_pretraining_path, story,
                                                                  tmp_path):  # fmt: skip
    out = tmp_path / "run"

    def press_ctrl_c(status):
        if status.step == 5:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(pretrain.Interrupted) as stop:
        pretrain.pretrain(_resume_settings(tiny_pretraining_path, story, out), device="cpu", on_status=press_ctrl_c,
                          status_seconds=0.0)  # fmt: skip
    assert stop.value.result.saved_step == 5 and [s for s, _ in pretrain.checkpoints(out)] == [5]
    resumed = pretrain.pretrain(_resume_settings(tiny_pretraining_path, story, out), device="cpu")
    assert resumed.resumed and resumed.start_step == 5 and resumed.steps == RESUME_STEPS
    _assert_same_weights(out, straight_run[1])
    assert resumed.final_loss == straight_run[0].final_loss
    # The checkpoint it resumed from was pruned at step 8; the later save and the export still carry its
    # tokenizer (they were copied from the pruned folder, and silently left out: the model could not load).
    straight = Path(straight_run[0].out)
    for folder in (Path(""), Path(f"{pretrain.CHECKPOINT_PREFIX}{RESUME_STEPS:08d}")):
        for name in pretrain._TOKENIZER_FILES:
            assert (out / folder / name).is_file() == (straight / folder / name).is_file(), folder / name
            if (straight / folder / name).is_file():
                assert (out / folder / name).read_bytes() == (straight / folder / name).read_bytes()
    assert any((out / name).is_file() for name in pretrain._TOKENIZER_FILES)


def _ctrl_c_at_step_6_and_again_during_its_save(monkeypatch):
    """A status callback that presses Ctrl-C at step 6, and a second Ctrl-C while that step's save writes its
    optimizer state (the run saves every 4 steps: the save before it is step 4's)."""
    saves = []

    def second_ctrl_c_while_saving(name):
        if name == "pretrain-checkpoint-optimizer":
            saves.append(name)
            if len(saves) == 2:
                os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(pretrain, "crash_point", second_ctrl_c_while_saving)

    def press_ctrl_c(status):
        if status.step == 6:
            os.kill(os.getpid(), signal.SIGINT)

    return press_ctrl_c


def test_a_second_ctrl_c_during_the_save_keeps_the_previous_checkpoint(straight_run, tiny_pretraining_path, story,
                                                                      tmp_path, monkeypatch):  # fmt: skip
    out = tmp_path / "run"
    press_ctrl_c = _ctrl_c_at_step_6_and_again_during_its_save(monkeypatch)
    with pytest.raises(pretrain.Interrupted) as stop:
        pretrain.pretrain(_resume_settings(tiny_pretraining_path, story, out), device="cpu", on_status=press_ctrl_c,
                          status_seconds=0.0)  # fmt: skip
    assert stop.value.result.saved_step == 4
    assert [s for s, _ in pretrain.checkpoints(out)] == [4]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # the half-written save was cleaned up
    monkeypatch.undo()
    pretrain.pretrain(_resume_settings(tiny_pretraining_path, story, out), device="cpu")
    _assert_same_weights(out, straight_run[1])


def test_a_restart_stopped_before_its_first_save_says_the_old_run_is_still_there(tiny_pretraining_path, story,
                                                                                  tmp_path, monkeypatch):  # fmt: skip
    out = tmp_path / "run"
    settings = _settings(tiny_pretraining_path, story, out, steps=4, batch_size=4, max_length=24, probes=[])
    pretrain.pretrain(settings, device="cpu")
    assert [s for s, _ in pretrain.checkpoints(out)] == [4]

    def press_ctrl_c(status):
        if status.step == 1:
            os.kill(os.getpid(), signal.SIGINT)

    def second_ctrl_c_while_saving(name):
        if name == "pretrain-checkpoint-optimizer":
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(pretrain, "crash_point", second_ctrl_c_while_saving)
    replacing = _settings(tiny_pretraining_path, story, out, steps=6, batch_size=4, max_length=24, probes=[], seed=1)
    with pytest.raises(pretrain.Interrupted) as stop:
        pretrain.pretrain(replacing, device="cpu", restart=True, on_status=press_ctrl_c, status_seconds=0.0)
    result = stop.value.result
    assert result.saved_step is None and [s for s, _ in pretrain.checkpoints(out)] == [4]  # the old run, intact
    notice = pretrain.rerun_notice(result, restart=True)
    assert "still holds the run it was to replace (step 4)" in notice and "without resumes that old run" in notice
    assert "starts from the beginning" in pretrain.rerun_notice(result, restart=False)


@pytest.mark.parametrize(
    "point",
    [
        "pretrain-checkpoint-weights",
        "pretrain-checkpoint-optimizer",
        "pretrain-checkpoint-state",
        "pretrain-checkpoint-rename",
        "pretrain-checkpoint-prune",
        "atomic-write:temp-written@model.safetensors",  # inside the export: a stray temporary file
        "pretrain-export-weights",
    ],
)
def test_sigkill_at_each_write_step_then_rerun_ends_identical(straight_run, tiny_pretraining_path, story, tmp_path,
                                                              point):  # fmt: skip
    out = tmp_path / "run"
    env = {**os.environ, "BERTPROBE_TEST_KILL_AFTER": point, "PYTHONPATH": str(Path(pretrain.__file__).parents[1])}
    killed = subprocess.run([sys.executable, "-m", "bertprobe", *_resume_args(tiny_pretraining_path, story, out)],
                            env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    rerun = pretrain.pretrain(_resume_settings(tiny_pretraining_path, story, out), device="cpu")
    assert rerun.steps == RESUME_STEPS
    assert rerun.resumed == (point not in {"pretrain-checkpoint-weights", "pretrain-checkpoint-optimizer",
                                           "pretrain-checkpoint-state"})  # fmt: skip
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # the killed save's leftovers are gone
    _assert_same_weights(out, straight_run[1])


def _stories(tmp_path, sizes):
    """A corpus of documents of ``sizes`` lines ("story D sentence S ."), its lines and each line's document."""
    lines, documents = [], []
    for document, size in enumerate(sizes):
        for sentence in range(size):
            lines.append(f"story {document} sentence {sentence} .")
            documents.append(document)
    text = ""
    for index, line in enumerate(lines):
        if index and documents[index] != documents[index - 1]:
            text += "\n"
        text += line + "\n"
    path = tmp_path / "stories.txt"
    path.write_text(text)
    return pretrain.read_corpus([str(path)]), lines, documents


def test_batches_cover_each_epoch_once_and_nsp_pairs_follow_bert(tiny_pretraining_path, tmp_path):
    from bertprobe import models

    # some one-line documents: no pair, masked-LM only
    corpus, lines, documents = _stories(tmp_path, [1 + document % 4 for document in range(30)])
    assert corpus.lines == lines and len(set(corpus.documents)) == 30
    lm = models.load_trainable(str(tiny_pretraining_path), device="cpu")
    data = pretrain.TrainingData(lm, corpus, max_length=32, seed=3, rate=0.15, nsp=True)
    assert len(data) == len(lines) and data.pairs == sum(1 + d % 4 - 1 for d in range(30))
    seen, labels = [], {0: 0, 1: 0}
    steps = 3 * len(data) // 5
    for step in range(steps):
        batch = data.batch(step, 5)
        seen += batch.examples
        rows = zip(batch.examples, batch.input_ids.tolist(), batch.labels.tolist(), batch.token_type_ids.tolist(),
                   batch.next_labels.tolist(), strict=True)  # fmt: skip
        for (epoch, position), masked, targets, types, label in rows:
            ids = [t if t != -100 else m for m, t in zip(masked, targets, strict=True)]  # undo the masking
            words = lm.tokenizer.backend.decode(ids, skip_special_tokens=False).replace(" [PAD]", "")
            line = int(data.order(epoch)[position])
            segments = words.removeprefix("[CLS] ").removesuffix(" [SEP]").split(" [SEP] ")
            assert segments[0] == lines[line].replace(" .", ".")
            if label == -100:  # a line with no next line in its document stands alone
                assert line + 1 == len(lines) or documents[line + 1] != documents[line]
                assert len(segments) == 1 and set(types) == {0}
                continue
            labels[label] += 1
            second = segments[1]
            # 0: the true next line; 1: a line of another document (BERT's random next sentence)
            if label == 0:
                assert second == lines[line + 1].replace(" .", ".")
            else:  # from another document of several lines, never a lone line
                assert int(second.split()[1]) != documents[line] and int(second.split()[1]) % 4 != 0
            first_length = len(lm.tokenizer.backend.encode(lines[line], add_special_tokens=False).ids)
            assert types[: first_length + 2] == [0] * (first_length + 2) and types[first_length + 2] == 1
    epochs = {}
    for epoch, position in seen:
        epochs.setdefault(epoch, []).append(position)
    for epoch, positions in epochs.items():
        assert len(positions) == len(set(positions))  # nothing repeated within an epoch
        if epoch < max(epochs):
            assert sorted(positions) == list(range(len(data)))  # nothing skipped
    assert 0.3 < labels[0] / (labels[0] + labels[1]) < 0.7


@pytest.mark.parametrize("negatives", ["same-document", "mixed"])
def test_nsp_negatives_from_the_same_document_are_never_the_next_line(tiny_pretraining_path, tmp_path, negatives):
    from bertprobe import models

    # documents of 2 lines have no same-document negative: those fall back to another document
    corpus, lines, documents = _stories(tmp_path, [2 + document % 5 for document in range(24)])
    lm = models.load_trainable(str(tiny_pretraining_path), device="cpu")
    data = pretrain.TrainingData(lm, corpus, max_length=32, seed=5, rate=0.15, nsp=True, negatives=negatives)
    kinds = {"same": 0, "other": 0}
    for index in range(4 * len(data)):
        epoch, position = data.locate(index)
        ids, _, label = data.example(epoch, position)
        if label != 1:
            continue
        line = int(data.order(epoch)[position])
        words = lm.tokenizer.backend.decode(ids, skip_special_tokens=False)
        second = words.split(" [SEP] ")[1].removesuffix(" [SEP]").replace(".", " .")
        partner = lines.index(second)
        assert partner not in (line, line + 1)
        if documents[partner] == documents[line]:
            kinds["same"] += 1
        else:
            kinds["other"] += 1
            if negatives == "same-document":  # only where the document has no other line to give
                assert sum(d == documents[line] for d in documents) == 2
    assert kinds["same"] > 50
    if negatives == "mixed":
        assert 0.3 < kinds["other"] / (kinds["same"] + kinds["other"]) < 0.7


def test_the_only_pair_of_a_corpus_never_gets_its_true_next_line_as_a_random_one(tiny_pretraining_path, tmp_path):
    from bertprobe import models

    path = tmp_path / "corpus.txt"  # one document of two lines; the others stand alone
    path.write_text("the cat sat on the mat .\nthe dog sat on the rug .\n\na lone line .\n\nanother lone line .\n")
    lm = models.load_trainable(str(tiny_pretraining_path), device="cpu")
    data = pretrain.TrainingData(lm, pretrain.read_corpus([str(path)]), max_length=32, seed=0, rate=0.15, nsp=True)
    seconds = {0: set(), 1: set()}
    for index in range(200):
        ids, _, label = data.example(*data.locate(index))
        if label != -100:
            words = lm.tokenizer.backend.decode(ids, skip_special_tokens=False)
            seconds[label].add(words.split(" [SEP] ")[1].removesuffix(" [SEP]"))
    assert seconds[0] == {"the dog sat on the rug."}
    assert seconds[1] and "the dog sat on the rug." not in seconds[1]  # "not next" is never the next line


def test_corpus_lines_end_at_a_lone_cr_and_special_token_names_in_them_are_text(tiny_pretraining_path, tmp_path):
    from bertprobe import models

    unix, mac = tmp_path / "unix.txt", tmp_path / "mac.txt"
    unix.write_text("the cat sat .\nthe dog ran .\n\nwrite [MASK] or [SEP] here .\n")
    mac.write_bytes(unix.read_bytes().replace(b"\n", b"\r"))
    corpus = pretrain.read_corpus([str(unix)])
    assert (
        pretrain.read_corpus([str(mac)]).lines
        == corpus.lines
        == ["the cat sat .", "the dog ran .", "write [MASK] or [SEP] here ."]
    )
    assert pretrain.read_corpus([str(mac)]).documents == corpus.documents == [0, 0, 1]
    lm = models.load_trainable(str(tiny_pretraining_path), device="cpu")
    data = pretrain.TrainingData(lm, corpus, max_length=32, seed=0, rate=0.15, nsp=False)
    pieces = [lm.tokenizer.id_to_token(int(i)) for i in data.ids[data.offsets[2] : data.offsets[3]]]
    assert pieces == ["write", "[", "mask", "]", "or", "[", "sep", "]", "here", "."]
    # Only the corpus is read that way: the model's own [MASK] in a probe sentence is still the mask.
    assert lm.tokenizer.encode("the [MASK] sat .").ids.count(lm.tokenizer.mask_token_id) == 1


def test_nsp_negatives_are_refused_without_nsp_and_a_run_saved_before_the_option_resumes(
    tiny_pretraining_path, corpus, tmp_path
):
    from bertprobe.cli.pretrain import NspNegatives  # spelt out there: importing pretrain would slow --help

    assert [choice.value for choice in NspNegatives] == list(pretrain.NSP_NEGATIVES)
    with pytest.raises(InputError, match="--nsp-negatives goes with --nsp"):
        pretrain.check_settings(_settings(tiny_pretraining_path, corpus, tmp_path / "x", nsp_negatives="mixed"))
    state = {"settings": asdict(_settings(tiny_pretraining_path, corpus, tmp_path / "x")), "step": 3}
    del state["settings"]["nsp_negatives"]  # a trainer state written by bertprobe before --nsp-negatives
    state["corpus_sha256"] = pretrain.read_corpus([str(corpus)]).sha256
    settings = _settings(tiny_pretraining_path, corpus, tmp_path / "x")
    assert pretrain._resume_checks(state, settings, pretrain.read_corpus([str(corpus)]), tmp_path / "x") == []
    with pytest.raises(InputError, match="--nsp-negatives other-document → same-document"):
        changed = _settings(tiny_pretraining_path, corpus, tmp_path / "x", nsp=True, nsp_negatives="same-document")
        state["settings"]["nsp"] = True
        pretrain._resume_checks(state, changed, pretrain.read_corpus([str(corpus)]), tmp_path / "x")


def test_another_spelling_of_the_same_from_and_corpus_resumes_the_run(tiny_pretraining_path, corpus, tmp_path,
                                                                       monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").symlink_to(tiny_pretraining_path, target_is_directory=True)
    (tmp_path / "c.txt").write_bytes(Path(corpus).read_bytes())
    state = {"settings": asdict(_settings("m", "c.txt", tmp_path / "x")), "step": 3}
    state["corpus_sha256"] = pretrain.read_corpus(["c.txt"]).sha256
    again = _settings("./m", str(tmp_path / "c.txt"), tmp_path / "x")
    assert pretrain._resume_checks(state, again, pretrain.read_corpus([again.corpus[0]]), tmp_path / "x") == []
    elsewhere = _settings(tiny_pretraining_path.parent, "c.txt", tmp_path / "x")  # another checkpoint: refused
    with pytest.raises(InputError, match=r"holds a run from m on c\.txt"):
        pretrain._resume_checks(state, elsewhere, pretrain.read_corpus(["c.txt"]), tmp_path / "x")


def test_a_max_length_beyond_the_models_positions_is_announced_not_silently_cut(
    tiny_pretraining_path, corpus, tmp_path
):
    result = pretrain.pretrain(_settings(tiny_pretraining_path, corpus, tmp_path / "run", steps=1, max_length=100,
                                         probes=[]), device="cpu")  # fmt: skip
    assert result.settings["max_length"] == 100  # what was asked; the notice says what was done
    assert any("--max-length 100" in notice and "at most 64 tokens" in notice for notice in result.notices)


def test_frozen_layers_stay_as_they_were(tiny_pretraining_path, corpus, tmp_path):
    import torch
    from safetensors.torch import load_file

    out = tmp_path / "run"
    pretrain.pretrain(_settings(tiny_pretraining_path, corpus, out, steps=3, freeze_layers=1), device="cpu")
    before, after = (
        load_file(str(tiny_pretraining_path / "model.safetensors")),
        load_file(str(out / "model.safetensors")),
    )
    for key in ("bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.attention.self.query.weight"):
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(
        before["bert.encoder.layer.1.output.dense.weight"], after["bert.encoder.layer.1.output.dense.weight"]
    )
    with pytest.raises(InputError, match="has only 2 layers"):
        pretrain.pretrain(_settings(tiny_pretraining_path, corpus, tmp_path / "x", steps=3, freeze_layers=3),
                          device="cpu")  # fmt: skip


def test_an_untied_decoder_is_saved_and_stays_untied(tiny_pretraining_path, corpus, tmp_path):
    """A checkpoint whose MLM decoder is a weight of its own: continued training must not save it tied."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file
    from transformers import BertForMaskedLM

    source = tmp_path / "untied"
    shutil.copytree(tiny_pretraining_path, source)
    weights = load_file(str(source / "model.safetensors"))
    embeddings = weights["bert.embeddings.word_embeddings.weight"]
    generator = torch.Generator().manual_seed(5)
    weights["cls.predictions.decoder.weight"] = torch.randn(embeddings.shape, generator=generator)
    save_file(weights, str(source / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps(dict(config, tie_word_embeddings=False)))
    out = tmp_path / "run"
    pretrain.pretrain(_settings(source, corpus, out, steps=1, lr=1e-9, probes=[]), device="cpu")
    saved = load_file(str(out / "model.safetensors"))
    assert "cls.predictions.decoder.weight" in saved
    assert json.loads((out / "config.json").read_text())["tie_word_embeddings"] is False
    ids = torch.tensor([[101, 1996, 103, 2938, 102]])
    before = BertForMaskedLM.from_pretrained(str(source)).eval()(input_ids=ids).logits
    after = BertForMaskedLM.from_pretrained(str(out)).eval()(input_ids=ids).logits
    torch.testing.assert_close(after, before, atol=1e-3, rtol=1e-3)  # one step at lr 1e-9: the same model


def test_a_long_pair_keeps_the_words_where_its_sentences_meet(tiny_pretraining_path, tmp_path):
    """BERT's NSP question is whether B follows A: a pair cut to fit keeps A's end and B's start."""
    from bertprobe import models

    lm = models.load_trainable(str(tiny_pretraining_path), device="cpu")
    first = "the old man walked slowly along the river bank in the cold rain and at last he reached his house ."
    second = "he opened the door with a rusty key and sat down by the cold fire to dry his wet coat ."
    path = tmp_path / "pair.txt"
    path.write_text(f"{first}\n{second}\n\nthe end of another story .\nits last line .\n")
    pieces = [lm.tokenizer.backend.encode(text, add_special_tokens=False).ids for text in (first, second)]
    assert len(pieces[0]) > 20 and len(pieces[1]) > 20
    for cut in pretrain.PAIR_CUTS:
        data = pretrain.TrainingData(lm, pretrain.read_corpus([str(path)]), 24, seed=0, rate=0.15, nsp=True,
                                     pair_cut=cut)  # fmt: skip
        a, b = data._cut(pieces[0], pieces[1])
        assert len(a) + len(b) == 21 and abs(len(a) - len(b)) <= 1  # the longer sentence is cut first, as before
        assert b == pieces[1][: len(b)]  # B keeps its start either way
        # "junction": A keeps its end ("... reached his house ."); "ends" (runs saved before 0.2) its start
        assert a == (pieces[0][-len(a) :] if cut == "junction" else pieces[0][: len(a)])
        true_next = [data.example(e, p) for e in range(20) for p in range(len(data))]
        assert any(label == 0 and ids[1 : 1 + len(a)] == a for ids, _, label in true_next)
    short = pieces[0][:5], pieces[1][:5]
    assert data._cut(*short) == short  # a pair that fits is not cut


def test_a_run_saved_before_the_junction_cut_resumes_with_its_own_cut(tiny_pretraining_path, tmp_path):
    """Its remaining steps must see the examples its first steps were drawn from: same end as a straight run."""
    long_story = tmp_path / "story.txt"
    long_story.write_text("\n".join(" ".join(STORY[i : i + 4]) for i in range(0, len(STORY) - 4)) + "\n")

    def settings(out, cut):
        made = _resume_settings(tiny_pretraining_path, long_story, out)
        made.max_length, made.pair_cut = 16, cut
        return made

    straight = {cut: tmp_path / f"straight-{cut}" for cut in pretrain.PAIR_CUTS}
    for cut, out in straight.items():
        pretrain.pretrain(settings(out, cut), device="cpu")
    reference = _weights(straight["ends"])
    assert any(not (reference[k] == _weights(straight["junction"])[k]).all() for k in reference)  # the cut matters

    out = tmp_path / "old"

    def press_ctrl_c(status):
        if status.step == 5:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(pretrain.Interrupted):
        pretrain.pretrain(settings(out, "ends"), device="cpu", on_status=press_ctrl_c, status_seconds=0.0)
    (_, saved), *_ = pretrain.checkpoints(out)
    state = json.loads((saved / pretrain.STATE_FILE).read_text())
    del state["settings"]["pair_cut"]  # as a state saved before pair_cut existed (and before its digest)
    del state[pretrain.STATE_DIGEST]
    (saved / pretrain.STATE_FILE).write_text(json.dumps(state))
    resumed = pretrain.pretrain(settings(out, "junction"), device="cpu")  # today's default, as a rerun would pass
    assert resumed.resumed and resumed.start_step == 5 and resumed.settings["pair_cut"] == "ends"
    _assert_same_weights(out, reference)


def test_after_a_ctrl_c_the_after_column_is_what_the_saved_model_predicts(tiny_pretraining_path, corpus, tmp_path):
    # No look at the probes happened during the run (probe_seconds is long): "after" used to repeat "before".
    out = tmp_path / "run"

    def press_ctrl_c(status):
        if status.step == 30:
            os.kill(os.getpid(), signal.SIGINT)

    settings = _settings(tiny_pretraining_path, corpus, out, steps=60)
    with pytest.raises(pretrain.Interrupted) as stop:
        pretrain.pretrain(settings, device="cpu", on_status=press_ctrl_c, status_seconds=0.0, probe_seconds=1e9)
    result = stop.value.result
    assert result.saved_step == 30
    from bertprobe import models

    saved = pretrain.probe_predictions(models.load(str(out), head="mlm", device="cpu"), settings.probes)
    assert [w for w, _ in result.probes_after[0].predictions] == [w for w, _ in saved[0].predictions]
    for (_, p_after), (_, p_saved) in zip(result.probes_after[0].predictions, saved[0].predictions, strict=True):
        assert p_after == pytest.approx(p_saved, abs=1e-3)
    assert result.probes_after != result.probes_before  # 30 steps on this corpus move the top words
    # A second Ctrl-C leaves no "after" for the saved model: the table shows only "before", and says why.
    import dataclasses
    import io

    from rich.console import Console

    from bertprobe.render.pretrain import pretrain_summary

    console = Console(file=io.StringIO(), width=200)
    pretrain_summary(dataclasses.replace(result, probes_after=[]), console)
    shown = " ".join(console.file.getvalue().split())
    assert "none after: a second Ctrl-C stopped it first" in shown and "before → after" not in shown


def test_a_probe_without_a_mask_is_refused_before_out_is_made_and_named_as_the_option(
    cli, tiny_pretraining_path, corpus, tmp_path
):
    # It was refused only after --out (and the folders above it, and its lock file) had been made, with a hint
    # about fillmask.
    out = tmp_path / "new" / "run"
    code, _, stderr = cli("pretrain", "--from", tiny_pretraining_path, "--corpus", corpus, "--out", out, "--steps", 1,
                          "--probe", "the cat sat on the [MASK] .", "--probe", "no mask here")  # fmt: skip
    lines = stderr.strip().splitlines()
    assert code == 1 and len(lines) == 2 and "Traceback" not in stderr, stderr
    assert "--probe 'no mask here'" in lines[0] and "--probe" in lines[1] and "fillmask" not in lines[1]
    assert not (tmp_path / "new").exists()


def _summary(result) -> str:
    import io

    from rich.console import Console

    from bertprobe.render.pretrain import pretrain_summary

    console = Console(file=io.StringIO(), width=300)
    pretrain_summary(result, console)
    return " ".join(console.file.getvalue().split())


def test_a_rerun_past_its_budget_says_nothing_was_trained(cli, tiny_pretraining_path, corpus, tmp_path):
    out = tmp_path / "run"
    args = ["pretrain", "--from", tiny_pretraining_path, "--corpus", corpus, "--out", out, "--batch-size", 4,
            "--max-length", 16]  # fmt: skip
    assert cli(*args, "--steps", 3)[0] == 0
    for budget in (["--steps", 3], ["--steps", 2]):  # the same command again; a smaller budget
        code, stdout, stderr = cli(*args, *budget)
        assert code == 0, stderr
        # "the learning-rate schedule follows the new one" was said of a run that trained no step
        assert "learning-rate schedule" not in stderr
        assert "resumed at step 3: the budget was already spent, nothing trained" in " ".join(stdout.split())
    assert "already at step 3" in stderr and "--steps 2" in stderr
    result = pretrain.pretrain(_settings(tiny_pretraining_path, corpus, tmp_path / "zero", steps=None,
                                         minutes=1e-9, probes=[]), device="cpu")  # fmt: skip
    assert result.steps == 0 and "ran out before the first step" in _summary(result)


def test_a_second_ctrl_c_before_the_export_does_not_point_at_a_model_that_is_not_there(
    tiny_pretraining_path, corpus, tmp_path, monkeypatch
):
    out = tmp_path / "run"

    press_ctrl_c = _ctrl_c_at_step_6_and_again_during_its_save(monkeypatch)
    with pytest.raises(pretrain.Interrupted) as stop:
        pretrain.pretrain(_settings(tiny_pretraining_path, corpus, out, steps=10, save_steps=4), device="cpu",
                          on_status=press_ctrl_c, status_seconds=0.0)  # fmt: skip
    result = stop.value.result
    assert not (out / "config.json").exists() and not result.exported
    shown = _summary(result)
    assert "use it:" not in shown and "no model exported" in shown
    assert "last saved at step 4" in shown  # steps 5 and 6 ran, and are lost


def test_the_perplexities_before_and_after_are_shown_alike_and_the_final_loss_says_it_is_a_mean():
    import math

    result = pretrain.PretrainResult(
        model="m", revision=None, source="m", out="runs/x", corpus_lines=10, chunks=12, start_step=0, steps=20,
        seconds=60.0, tokens=900, first_loss=math.log(4.6), final_loss=math.log(4.9), resumed=False,
        interrupted=False, probes_before=[], probes_after=[], settings={"nsp": False},
    )  # fmt: skip
    shown = _summary(result)
    assert "perplexity of masked tokens 4.6 → 4.9" in shown  # was "5 → 4.9": a rise read as a fall
    assert "(first step)" in shown and "(mean of the last 20 steps)" in shown


def test_an_out_named_like_a_bundled_model_is_pointed_at_as_a_folder(cli, tiny_pretraining_path, corpus, tmp_path,
                                                                    monkeypatch):  # fmt: skip
    # "use it: ... --model tiny-mlm" loaded the bundled tiny-mlm, silently, not the model this run wrote there.
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = cli("pretrain", "--from", tiny_pretraining_path, "--corpus", corpus, "--out", "tiny-mlm",
                               "--steps", 1, "--batch-size", 2, "--max-length", 16)  # fmt: skip
    assert code == 0, stderr
    assert "--model ./tiny-mlm" in stdout
    code, stdout, stderr = cli("fillmask", "the cat sat on the [MASK] .", "--model", "tiny-mlm", "--json")
    assert code == 0 and json.loads(stdout)["model"] == "tiny-mlm"
    assert "the directory ./tiny-mlm here is not read" in stderr  # the bundled one, and it says so


@pytest.mark.parametrize(("field", "value"), [("minutes", 1e12), ("save_minutes", 1e12), ("save_steps", 10**9)])
def test_a_value_refused_for_being_too_large_is_not_told_it_is_too_small(corpus, tmp_path, field, value):
    # "--minutes 1e12 must be a positive number of minutes", "--save-steps 1000000000 must be at least 1"
    budget = {} if field == "minutes" else {"steps": 3}
    settings = pretrain.PretrainSettings(source="tiny-mlm", corpus=[str(corpus)], out=str(tmp_path / "x"),
                                         **budget, **{field: value})  # fmt: skip
    with pytest.raises(InputError, match=r"at most|between 1 and") as refused:
        pretrain.check_settings(settings)
    assert "at least 1" not in refused.value.message


def test_a_probe_sentence_with_a_written_special_token_is_told(tiny_pretraining_path, corpus, tmp_path):
    probes = ["the cat [SEP] sat on the [MASK] ."]
    result = pretrain.pretrain(_settings(tiny_pretraining_path, corpus, tmp_path / "run", steps=1, probes=probes),
                               device="cpu")  # fmt: skip
    told = [n for n in result.notices if "special" in n]
    assert len(told) == 1 and told[0].startswith("'[SEP]' in your text is read as the model's special [SEP] token")
