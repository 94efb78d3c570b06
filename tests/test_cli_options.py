"""The options every command shares (declared once), one meaning of --layer, and bad numbers refused.

Numbers are refused when the command line is parsed, before any model loads: exit 2, one line
naming the option, and a hint pointing at the command's --help.
"""

from __future__ import annotations

import json

import pytest

SHARED = ("--model", "--revision", "--offline", "--device", "--dtype", "--json", "--seed")
COMMANDS = ("fillmask", "sense", "cls-train", "cls-predict", "attribute", "nsp", "attention", "cloze")


def _help(cli, *command):
    code, out, _ = cli(*command, "--help")
    assert code == 0
    return out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_model_command_lists_the_shared_options(cli, command):
    text = _help(cli, command)
    for option in SHARED:
        assert option in text, (command, option)
    assert "minilm" in text and "tiny-mlm" in text  # --model names the bundled models


def test_pretrain_and_models_list_only_the_shared_options_they_use(cli):
    pretrain = _help(cli, "pretrain")
    assert all(o in pretrain for o in ("--offline", "--device", "--json", "--seed"))
    assert "--dtype" not in pretrain and "--revision" not in pretrain
    models = _help(cli, "models")
    assert "--json" in models and "--seed" not in models


def test_the_shared_options_reach_the_command(cli, tiny_encoder_path):
    code, out, err = cli("attention", "a cat sat", "-m", tiny_encoder_path, "--seed", "4294967295", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["seed"] == 4294967295 and doc["model"] == str(tiny_encoder_path)


@pytest.mark.parametrize(
    ("layer", "resolved"), [("1", 1), ("2", 2), ("-1", 2), ("-2", 1)]
)  # the tiny encoder has 2 layers
def test_attention_layer_counts_encoder_layers_and_from_the_end(cli, tiny_encoder_path, layer, resolved):
    code, out, err = cli("attention", "a cat sat", "-m", tiny_encoder_path, "--layer", layer, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["layer"] == resolved
    # The matrix shown is that layer's query x key attention (rows sum to 1), the same as the positive spelling.
    code, same, _ = cli("attention", "a cat sat", "-m", tiny_encoder_path, "--layer", str(resolved), "--json")
    assert json.loads(same)["matrix"] == doc["matrix"]


@pytest.mark.parametrize(
    ("command", "args", "message", "hint"),
    [
        ("attention", ("a cat",), "--layer 0 is the embedding output, which has no attention", "from 1 to 2"),
        ("attention", ("a cat", "--layer", "3"), "--layer 3 does not exist", "from 1 to 2, or -1 to -2"),
        ("attention", ("a cat", "--layer", "-3"), "--layer -3 does not exist", "from 1 to 2"),
        ("attention", ("a cat", "--head", "3"), "--head 3 does not exist", "from 1 to 2"),
        ("sense", ("bank", "--layer", "3"), "--layer 3 does not exist", "from 0 to 2, or -1 to -3"),
        ("sense", ("bank", "--layer", "-4"), "--layer -4 does not exist", "from 0 to 2"),
    ],
)
def test_a_layer_or_head_out_of_range_is_one_line_with_the_valid_range(
    cli, tiny_encoder_path, command, args, message, hint
):
    extra = ("--layer", "0") if message.startswith("--layer 0") else ()
    code, out, err = cli(command, *args, *extra, "-m", tiny_encoder_path)
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 2 and message in lines[0] and lines[1].startswith("hint:") and hint in lines[1]


@pytest.mark.parametrize(("layer", "shown"), [("0", 0), ("-1", 2), ("-3", 0), ("1", 1)])
def test_sense_layer_zero_is_the_embedding_output_and_negative_counts_from_the_end(
    cli, tiny_encoder_path, layer, shown
):
    code, out, err = cli("sense", "bank", "-m", tiny_encoder_path, "--layer", layer, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["shown_layer"] == shown
    # The matrix shown is that layer's: its mean over sentence pairs is that layer's row in the table.
    row = next(r for r in doc["layers"] if r["layer"] == shown)
    matrix = doc["matrix"]
    pairs = [matrix[i][j] for i in range(len(matrix)) for j in range(i + 1, len(matrix))]
    assert sum(pairs) / len(pairs) == pytest.approx(row["mean_cosine"], abs=1e-6)


NAN_INF = ("nan", "inf", "-inf", "1e400")
# (command line up to the option, option, refused values, one accepted value)
NUMERIC = [
    (("fillmask", "The cat sat on the [MASK]."), "--top-k", ("0", "-3", "1.5", "100001", "1e3", *NAN_INF)),
    (("fillmask", "The cat sat."), "--occurrence", ("0", "-1", "nan")),
    (("fillmask", "The cat sat on the [MASK]."), "--beam", ("0", "51", "nan")),
    (("fillmask", "The cat sat.", "--mode", "bert"), "--rate", ("0", "-0.1", "1.5", *NAN_INF)),
    (("fillmask", "The cat sat.", "--mode", "bert"), "--samples", ("0", "1001", "nan", "99999999999999999999")),
    (("fillmask", "The cat sat on the [MASK]."), "--seed", ("-1", "4294967296", "1.5", *NAN_INF)),
    (("sense", "bank"), "--layer", ("nan", "1.5", "100001", "-100001")),
    (("sense", "bank"), "--clusters", ("1", "0", "nan")),
    (("sense", "bank"), "--batch-size", ("0", "nan")),
    (("sense", "bank"), "--occurrence", ("0", "inf")),
    (("cls-train", "--data", "x.csv"), "--test-size", ("0", "1", "-0.2", *NAN_INF)),
    (("cls-train", "--data", "x.csv"), "--C", ("0", "-1", "abc", *NAN_INF)),
    (("cls-train", "--data", "x.csv"), "--max-train", ("0", "nan")),
    (("cls-train", "--data", "x.csv"), "--max-length", ("1", "2", "nan")),
    (("cls-train", "--data", "x.csv"), "--layer", ("nan", "inf")),
    (("cls-predict", "probe-dir", "a text"), "--batch-size", ("0", "inf")),
    (("attribute", "The cat sat on the [MASK]."), "--steps", ("0", "10001", *NAN_INF)),
    (("attribute", "The cat sat on the [MASK]."), "--max-steps", ("0", "nan")),
    (("attribute", "The cat sat on the [MASK]."), "--random-orders", ("0", "1001", "nan")),
    (("attribute", "The cat sat on the [MASK]."), "--internal-batch-size", ("0", "nan")),
    (("attribute", "The cat sat on the [MASK]."), "--mask", ("0", "nan")),
    (("nsp", "a", "b"), "--show", ("-1", "nan")),
    (("attention", "a cat"), "--layer", ("nan", "1.5", "100001")),
    (("attention", "a cat"), "--head", ("0", "-1", "nan", "inf")),
    (("cloze",), "--top-k", ("0", "nan", "100001")),
    (("pretrain",), "--steps", ("0", "-5", "nan", "100000001")),
    (("pretrain",), "--minutes", ("0", "-1", "43201", *NAN_INF)),
    (("pretrain",), "--lr", ("0", "-1e-4", "2", *NAN_INF)),
    (("pretrain",), "--save-minutes", ("0", "-1", *NAN_INF)),
    (("pretrain",), "--rate", ("0", "1.01", "nan")),
    (("pretrain",), "--warmup", ("-0.1", "0.95", "nan")),
    (("pretrain",), "--batch-size", ("0", "nan")),
    (("pretrain",), "--max-length", ("7", "nan")),
    (("pretrain",), "--seed", ("-1", "4294967296", "nan")),
    (("pretrain",), "--save-dtype", ("int8",)),
]


@pytest.mark.parametrize(
    ("args", "option", "value"),
    [(args, option, value) for args, option, values in NUMERIC for value in values],
    ids=lambda v: v if isinstance(v, str) else v[0],
)
def test_a_bad_number_is_a_usage_error_before_anything_runs(cli, args, option, value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # pretrain would write runs/ here if it ever started
    code, out, err = cli(*args, option, value)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("error: invalid value for") and option in lines[0]
    assert lines[1] == f"hint: See `bertprobe {args[0]} --help`."
    assert not (tmp_path / "runs").exists()


def _numeric_options():
    from typer.utils import get_params_from_function

    from bertprobe.cli import app

    for info in app.registered_commands:
        for name, meta in get_params_from_function(info.callback).items():
            if any(t in str(meta.annotation) for t in ("int", "float")):
                yield info.name, name, meta.default


@pytest.mark.parametrize(
    ("command", "name", "info"), list(_numeric_options()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_numeric_option_has_a_validated_type_and_refuses_nan(cli, command, name, info):
    from bertprobe.cli.options import Count, Real, parse_c, parse_layer

    # Options added later by anyone get the same checks: declared with count() / real() / layer_option().
    assert isinstance(info.parser, (Count, Real)) or info.parser in (parse_c, parse_layer), (command, name)
    option = next(d for d in info.param_decls if d.startswith("--"))
    for value in ("nan", "inf", "-99999999999999999999999"):
        code, out, err = cli(command, option, value)
        lines = err.strip().splitlines()
        assert code == 2 and out == "" and len(lines) == 2 and option in lines[0], (command, option, value, err)
