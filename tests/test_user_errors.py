"""Inputs a user can get wrong end in one 'error:' line and a hint, never a traceback."""

from __future__ import annotations

import json
import shutil


def _assert_user_error(result, *phrases):
    code, stdout, stderr = result
    assert stdout == ""
    assert code == 1, stderr
    assert stderr.startswith("error:") and "hint:" in stderr and "Traceback" not in stderr
    for phrase in phrases:
        assert phrase in stderr


def test_broken_model_directories(cli, tiny_encoder_path, tmp_path):
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    shutil.copy(tiny_encoder_path / "config.json", no_weights / "config.json")
    _assert_user_error(cli("attention", "hi there", "-m", no_weights), "has no weights")
    bad_config = tmp_path / "bad-config"
    shutil.copytree(tiny_encoder_path, bad_config)
    (bad_config / "config.json").write_text("{bad")
    _assert_user_error(cli("attention", "hi there", "-m", bad_config), "config.json is not valid JSON")


def test_cloze_files_are_checked_line_by_line(cli, mlm_path, tmp_path):
    good = '{"text": "The cat sat on the [MASK].", "answers": ["mat"]}\n'
    cases = {
        "string-answers.jsonl": (good + '{"text": "The [MASK] sat.", "answers": "cat"}\n', "line 2"),
        "no-mask.jsonl": (good + '{"text": "no mask here", "answers": ["x"]}\n', "line 2: no mask token"),
        "not-utf8.jsonl": (None, "not UTF-8"),
    }
    for name, (content, phrase) in cases.items():
        path = tmp_path / name
        if content is None:
            path.write_bytes(b'\xff\xfe{"text"\n')
        else:
            path.write_text(content)
        _assert_user_error(cli("cloze", "--data", path, "-m", mlm_path), phrase)
    (tmp_path / "ok.jsonl").write_text(good)
    code, stdout, _ = cli("cloze", "--data", tmp_path / "ok.jsonl", "-m", mlm_path, "--json")
    assert code == 0 and json.loads(stdout)["items"][0]["answers"] == ["mat"]


def test_a_probe_json_that_is_not_an_object(cli, tmp_path):
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "probe.json").write_text("[]")
    (probe / "probe.safetensors").write_bytes(b"")
    _assert_user_error(cli("cls-predict", probe, "hello"), "is not a bertprobe probe")


def test_nsp_offline_names_the_head_it_needs(cli, monkeypatch):
    monkeypatch.setattr("bertprobe.models._cached_on_hub", lambda repo: False)
    _assert_user_error(cli("nsp", "I was hungry.", "So I ate.", "--offline"), "no model with an NSP head")


def test_a_file_the_system_will_not_read_is_one_error_line(cli, mlm_path):
    # /proc/self/mem is a file whose reads fail (EIO): what a disk error or a file one may not read gives.
    _assert_user_error(
        cli("fillmask", "--input", "/proc/self/mem", "-m", mlm_path), "/proc/self/mem, line 1: cannot be read"
    )


def test_any_refused_read_or_write_is_one_error_line_naming_the_file(cli, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", "/data/probe")

    monkeypatch.setattr("bertprobe.models.list_models", full_disk)
    _assert_user_error(cli("models"), "/data/probe: No space left on device")


def test_a_missing_column_hint_offers_only_options_the_command_has(cli, tmp_path):
    # nsp --pairs has no option to rename its columns: "name the column with the matching option" sent users looking.
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("a,b\nI was hungry.,So I ate.\n")
    code, stdout, stderr = cli("nsp", "--pairs", pairs, "-m", "tiny-mlm")
    assert code == 1 and stdout == "" and "no 'sentence_a' column" in stderr
    hint = stderr[stderr.index("hint:") :]
    assert "Add a 'sentence_a' column" in hint and "option" not in hint


def test_a_directory_given_as_a_file_is_called_a_directory(cli, tmp_path):
    # "no such file" for a folder that plainly exists sent users checking the spelling.
    code, stdout, stderr = cli("fillmask", "--input", tmp_path, "-m", "tiny-mlm")
    assert code == 1 and stdout == "" and f"{tmp_path}: a directory, not a file" in stderr
    code, _, stderr = cli("pretrain", "--corpus", tmp_path, "--out", tmp_path / "o", "--steps", 1)
    assert code == 1 and "a directory, not a file" in stderr
