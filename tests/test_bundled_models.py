"""The models that ship with bertprobe: offline defaults, and each one equal to transformers on the same files.

With no hub and no cached bert-base-uncased, ``--model auto`` takes the first bundled model that has
the head a command needs (``BUNDLED``'s order in ``bertprobe/models/spec.py``). These tests run
offline on the files the install ships, whichever models those are.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from bertprobe.models import BUNDLED, checkpoint_heads

README = Path(__file__).resolve().parents[1] / "README.md"
OWN = [name for name, b in BUNDLED.items() if b.package == "bertprobe"]  # made by bertprobe, in data/models


def _first_with(head: str) -> str | None:
    return next((name for name, b in BUNDLED.items() if b.path() and head in checkpoint_heads(b.path())), None)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setattr("bertprobe.models._cached_on_hub", lambda repo: False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("BERTPROBE_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("name", list(BUNDLED))
def test_every_bundled_model_is_installed(name):
    path = BUNDLED[name].path()
    assert path is not None, f"the bundled model {name} is missing from the install"
    if name in OWN:  # bertprobe's own are masked LMs, with the recipe that made them
        assert (path / "RECIPE.md").is_file() and "mlm" in checkpoint_heads(path)


@pytest.mark.parametrize(("command", "args", "head"), [
    ("cloze", ["--set", "builtin"], "mlm"),
    ("sense", ["bank"], "encoder"),
])  # fmt: skip
def test_offline_auto_takes_the_first_bundled_model_with_the_head(cli, offline, command, args, head):
    code, stdout, stderr = cli(command, *args, "--json")
    assert code == 0, stderr
    expected = "minilm" if head == "encoder" else _first_with("mlm")
    assert json.loads(stdout)["model"] == expected
    if head == "mlm":
        assert f"Using offline model {expected}" in stderr and "weaker than bert-base-uncased" in stderr


def test_offline_nsp_uses_a_bundled_nsp_head_or_says_how_to_make_one(cli, offline):
    code, stdout, stderr = cli("nsp", "I was hungry.", "So I ate.", "--json")
    if _first_with("nsp") is not None:
        assert code == 0 and json.loads(stdout)["model"] == _first_with("nsp")
        return
    assert code == 1 and stdout == "" and "Traceback" not in stderr
    assert "no model with an NSP head is available" in stderr and "pretrain --nsp" in stderr


@pytest.mark.parametrize("name", OWN)
def test_fill_mask_equals_the_transformers_pipeline(cli, name):
    from transformers import pipeline

    fill = pipeline("fill-mask", model=str(BUNDLED[name].path()), device="cpu", dtype=torch.float32)
    for text in ["Paris is the capital of [MASK].", "She poured milk into her [MASK] of tea."]:
        code, stdout, stderr = cli("fillmask", text, "-m", name, "--top-k", 5, "--json")
        assert code == 0, stderr
        ours = json.loads(stdout)["masks"][0]["predictions"]
        theirs = fill(text, top_k=5)
        assert [p["token"] for p in ours] == [t["token_str"].strip() for t in theirs]
        assert [p["score"] for p in ours] == pytest.approx([t["score"] for t in theirs], abs=1e-5)


@pytest.mark.parametrize("name", OWN)
def test_cls_origin_tells_what_bertprobe_did_to_its_own_models(cli, name):
    code, stdout, stderr = cli("fillmask", "The cat sat on the [MASK].", "-m", name, "--show-cls", "--json")
    assert code == 0, stderr
    assert "RECIPE.md" in json.loads(stdout)["cls_origin"]["note"]


def test_the_readme_states_the_offline_masked_lms_measured_scores(cli):
    """The README's figures for the offline default masked LM are the ones `cloze --set heldout` measures today."""
    name = _first_with("mlm")
    code, stdout, stderr = cli("cloze", "--set", "heldout", "-m", name, "--json")
    assert code == 0, stderr
    doc = json.loads(stdout)
    text = README.read_text(encoding="utf-8")
    phrase = r"acceptable (\d+)% of the time and one of its first five (\d+)%".replace(" ", r"\s+")
    stated = re.search(rf"- `{name}`: .*?{phrase}", text, re.DOTALL)
    assert stated, f"the README's model section states {name}'s held-out scores"
    assert int(stated.group(1)) == round(100 * doc["precision_at_1"])
    assert int(stated.group(2)) == round(100 * doc["precision_at_k"])
