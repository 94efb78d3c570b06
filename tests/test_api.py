"""The Python API returns what the CLI prints: the same document as ``--json``, the same view as HTML."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from documents import close

import bertprobe
from bertprobe.errors import BertprobeError, InputError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTPROBE_CACHE", str(tmp_path / "cache"))


def cli_json(cli, *args) -> dict:
    code, stdout, stderr = cli(*args, "--json")
    assert code == 0, stderr
    return json.loads(stdout)


def test_fill_equals_the_cli_json(cli):
    text = "The cat sat on the [MASK]."
    expected = cli_json(cli, "fillmask", text, "-m", "tiny-mlm", "--top-k", 7, "--seed", 3)
    result = bertprobe.fill(text, model="tiny-mlm", top_k=7, seed=3)
    assert type(result).__name__ == "FillMaskResult"
    assert result.to_dict() == expected
    assert expected["seed"] == 3 and len(expected["masks"][0]["predictions"]) == 7


def test_fill_of_many_texts_equals_the_cli_input_lines(cli, tmp_path):
    texts = ["The cat sat on the [MASK].", "I saw an [MASK] at the zoo.", "The [MASK] chased the [MASK]."]
    corpus = tmp_path / "masked.txt"
    corpus.write_text("\n".join(texts) + "\n")
    code, stdout, stderr = cli("fillmask", "--input", corpus, "-m", "tiny-mlm", "--json")
    assert code == 0, stderr
    lines = [{k: v for k, v in json.loads(line).items() if k not in ("index", "line")} for line in stdout.splitlines()]
    results = bertprobe.fill(texts, model="tiny-mlm")
    assert isinstance(results, list) and all(close(r.to_dict(), d) for r, d in zip(results, lines, strict=True))
    with pytest.raises(BertprobeError, match=r"text 2: no \[MASK\] in the text; nothing was computed"):
        bertprobe.fill(["The cat sat on the [MASK].", "No mask here."], model="tiny-mlm")
    with pytest.raises(InputError, match="no text given"):
        bertprobe.fill([], model="tiny-mlm")


def test_fill_masking_mode_with_the_same_seed_draws_the_same_masks(cli):
    text = "The quick brown fox jumps over the lazy dog near the river bank."
    expected = cli_json(cli, "fillmask", text, "-m", "tiny-mlm", "--mode", "bert", "--samples", 3, "--seed", 11)
    assert bertprobe.fill(text, mode="bert", samples=3, model="tiny-mlm", seed=11).to_dict() == expected


def test_a_loaded_model_gives_the_same_result_as_its_name(cli):
    text = "She went to the [MASK] to buy bread."
    by_name = bertprobe.fill(text, model="tiny-mlm").to_dict()
    assert bertprobe.fill(text, model=bertprobe.load("tiny-mlm", head="mlm")).to_dict() == by_name
    # Loaded for another head: the same checkpoint is loaded for the head the command needs.
    assert bertprobe.fill(text, model=bertprobe.load("tiny-mlm")).to_dict() == by_name
    # A loaded model runs as loaded: a call asking for another dtype or revision is refused, not ignored.
    lm = bertprobe.load("tiny-mlm", head="mlm")
    with pytest.raises(InputError, match=re.escape("dtype='float16' (it is float32)")):
        bertprobe.fill(text, model=lm, dtype="float16")
    with pytest.raises(InputError, match="revision='v2'"):
        bertprobe.fill(text, model=lm, revision="v2")
    assert bertprobe.fill(text, model=lm, device="cpu", dtype="float32").to_dict() == by_name
    # Reloaded for another head, it keeps the loaded dtype: a float16 encoder gives a float16 masked LM.
    half = bertprobe.load("tiny-mlm", head="encoder", dtype="float16")
    assert (
        bertprobe.fill(text, model=half).to_dict() == bertprobe.fill(text, model="tiny-mlm", dtype="float16").to_dict()
    )


def test_score_one_text_many_texts_and_pairs_equal_the_cli(cli):
    one = "The cat sat on the mat."
    assert bertprobe.score(one, model="tiny-mlm").to_dict() == cli_json(cli, "score", one, "-m", "tiny-mlm")
    many = bertprobe.score([one, "The cats sat on the mat."], model="tiny-mlm", metric="within-word-l2r")
    alone = cli_json(cli, "score", "The cats sat on the mat.", "-m", "tiny-mlm", "--metric", "within-word-l2r")
    assert close([r.to_dict() for r in many][1], alone)
    pairs = EXAMPLES / "minimal_pairs.csv"
    expected = cli_json(cli, "score", "--pairs", pairs, "-m", "tiny-mlm")
    result = bertprobe.score(pairs=pairs, model="tiny-mlm")
    assert type(result).__name__ == "PairsResult" and result.to_dict() == expected


def test_sense_equals_the_cli(cli):
    sentences = ["I sat on the river bank.", "The bank raised its rates.", "Fish swam near the bank."]
    args = [a for s in sentences for a in ("-s", s)]
    expected = cli_json(cli, "sense", "bank", *args, "-m", "minilm", "--clusters", 2)
    result = bertprobe.sense("bank", sentence=sentences, model="minilm", clusters=2)
    assert result.to_dict() == expected
    assert bertprobe.sense(list_sets=True).to_dict() == cli_json(cli, "sense", "--list")


def test_attention_and_nsp_equal_the_cli(cli, tiny_pretraining_path):
    text = "The cat sat on the mat."
    expected = cli_json(cli, "attention", text, "-m", "minilm", "--layer", -1, "--head", 2)
    assert bertprobe.attention(text, model="minilm", layer=-1, head=2).to_dict() == expected
    first, second = "I was hungry.", "So I made a sandwich."
    expected = cli_json(cli, "nsp", first, second, "-m", tiny_pretraining_path)
    assert bertprobe.nsp(first, second, model=str(tiny_pretraining_path)).to_dict() == expected


def test_attribute_and_cloze_equal_the_cli(cli):
    text = "The cat sat on the [MASK]."
    options = ["--steps", 4, "--random-orders", 2]
    expected = cli_json(cli, "attribute", text, "-m", "tiny-mlm", *options)
    result = bertprobe.attribute(text, model="tiny-mlm", steps=4, random_orders=2)
    assert result.to_dict() == expected
    assert bertprobe.cloze(model="tiny-mlm", top_k=3).to_dict() == cli_json(cli, "cloze", "-m", "tiny-mlm", "-k", 3)


def test_cls_train_and_predict_equal_the_cli(cli, tiny_encoder_path, tmp_path):
    model = str(tiny_encoder_path)
    common = ["--data", EXAMPLES / "sentiment.csv", "-m", model, "--max-train", 60, "--no-cache"]
    expected = cli_json(cli, "cls-train", *common, "--out", tmp_path / "cli-probe")
    result = bertprobe.cls_train(
        data=EXAMPLES / "sentiment.csv", model=model, max_train=60, no_cache=True, out=tmp_path / "api-probe"
    )
    document = result.to_dict()
    assert Path(document.pop("saved_to")).name == "api-probe" and Path(expected.pop("saved_to")).name == "cli-probe"
    # Timings differ from run to run; everything else is the same.
    assert document.pop("seconds").keys() == expected.pop("seconds").keys()
    assert document == expected
    texts = ["a gripping, funny film", "a tedious mess"]
    expected = cli_json(cli, "cls-predict", tmp_path / "cli-probe", *texts, "-m", model)
    assert bertprobe.cls_predict(tmp_path / "cli-probe", texts, model=model).to_dict() == expected


def test_html_view_shows_the_key_values_escaped(tiny_pretraining_path):
    first = "<script>x</script> [unused0] [b]y[/b]"
    result = bertprobe.nsp(first, "So I made a sandwich.", model=str(tiny_pretraining_path))
    page = result._repr_html_()
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>" not in page
    assert "[unused0] [b]y[/b]" in page  # not eaten as Rich markup
    assert f"{result.pairs[0].is_next_probability:.3f}" in page

    fill = bertprobe.fill("The cat sat on the [MASK].", model="tiny-mlm", top_k=3)
    page = fill._repr_html_()
    for prediction in fill.to_dict()["masks"][0]["predictions"]:
        assert prediction["token"] in page


def test_show_prints_the_cli_table(cli, capsys):
    text = "The cat sat on the [MASK]."
    bertprobe.fill(text, model="tiny-mlm").show()
    shown = capsys.readouterr().out
    code, table, _ = cli("fillmask", text, "-m", "tiny-mlm")
    assert code == 0
    assert [line.strip() for line in shown.splitlines() if "│" in line] == [
        line.strip() for line in table.splitlines() if "│" in line
    ]


def test_user_errors_raise_bertprobe_errors_with_a_hint():
    with pytest.raises(BertprobeError) as caught:
        bertprobe.fill("The cat sat on the mat.", model="tiny-mlm")
    assert "mask" in str(caught.value).lower() and caught.value.hint
    with pytest.raises(InputError) as caught:
        bertprobe.fill("The cat sat on the [MASK].", model="tiny-mlm", top_k=0)
    assert caught.value.hint
    with pytest.raises(InputError) as caught:
        bertprobe.cls_train(model="minilm")
    assert "--task or --data" in str(caught.value) and caught.value.hint
    with pytest.raises(BertprobeError) as caught:
        bertprobe.nsp("a", "b", model="minilm")  # an encoder without an NSP head
    assert caught.value.hint


def test_core_modules_stay_modules():
    from bertprobe import sense

    assert sense.catalog is bertprobe.sense.catalog  # the module other code imports is untouched
    assert callable(bertprobe.sense) and callable(bertprobe.attention)


def test_import_bertprobe_does_not_import_torch():
    code = (
        "import sys, bertprobe; bertprobe.fill; bertprobe.cls_train; bertprobe.load; import bertprobe.api;"
        "import bertprobe.results;"
        "print(','.join(m for m in ('torch', 'transformers', 'sklearn', 'captum', 'numpy', 'rich', 'typer')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_pretrain_equals_the_cli_json(cli, tiny_pretraining_path, tmp_path):
    corpus = EXAMPLES / "kitchen.txt"
    options = ["--steps", 3, "--batch-size", 4, "--max-length", 24, "--lr", 3e-3, "--seed", 5]
    expected = cli_json(cli, "pretrain", "--from", tiny_pretraining_path, "--corpus", corpus, "--out",
                        tmp_path / "cli", "--probe", "The cat sat on the [MASK].", *options)  # fmt: skip
    result = bertprobe.pretrain(corpus, source=str(tiny_pretraining_path), out=tmp_path / "api", steps=3,
                                batch_size=4, max_length=24, lr=3e-3, seed=5,
                                probe="The cat sat on the [MASK].")  # fmt: skip
    assert type(result).__name__ == "PretrainResult" and result.steps == 3
    got = result.to_dict()
    for doc in (got, expected):  # where it was written and how long it took differ, nothing else
        doc.pop("out"), doc.pop("seconds"), doc["settings"].pop("out")
    assert got == expected and expected["seed"] == 5 and expected["final_loss"] is not None
    with pytest.raises(InputError, match="exactly one budget"):
        bertprobe.pretrain(corpus, out=tmp_path / "none")


@pytest.mark.parametrize(
    ("call", "phrase"),
    [
        # Values the CLI's parsers refuse; passed on, they failed deep inside with a raw TypeError or IndexError.
        (lambda: bertprobe.sense("bank", model="minilm", layer="3"), "layer='3' is not a layer number"),
        (lambda: bertprobe.attention("The cat sat.", model="minilm", layer=1.5), "layer=1.5 is not a layer number"),
        (lambda: bertprobe.fill("The cat sat on the [MASK].", model="tiny-mlm", seed=None), "seed=None"),
        (lambda: bertprobe.fill(5, model="tiny-mlm"), "text=5 is not text"),
        (lambda: bertprobe.score(["The cat sat.", None], model="tiny-mlm"), "texts: item 2 (None) is not text"),
        (lambda: bertprobe.attention(None, model="minilm"), "text=None is not text"),
        (lambda: bertprobe.load("tiny-mlm", head="fill-mask"), "head='fill-mask' is not one of encoder, mlm"),
        # Taken as given these ran silently: layer True is layer 1, and the string "false" is truthy.
        (lambda: bertprobe.sense("bank", model="minilm", layer=True), "layer=True is not a layer number"),
        (lambda: bertprobe.fill("The [MASK] sat.", model="tiny-mlm", show_cls="false"), "show_cls='false' is not"),
        (lambda: bertprobe.cls_train(data=EXAMPLES / "sentiment.csv", sweep="no"), "sweep='no' is not True or False"),
        # A file argument that is no path was a raw TypeError (for --html / --plot, after the model work).
        (lambda: bertprobe.score(pairs=5, model="tiny-mlm"), "pairs=5 is not a file path"),
        (lambda: bertprobe.cls_predict(["probe"], "good"), "probe_dir=['probe'] is not a file path"),
        (lambda: bertprobe.attention("The cat sat.", model="minilm", plot=3), "plot=3 is not a file path"),
        (lambda: bertprobe.attribute("The [MASK] sat.", model="tiny-mlm", html=b"x.html"), "html=b'x.html' is not"),
        (lambda: bertprobe.pretrain(["c.txt", 7], steps=1), "corpus=7 is not a file path"),
        (lambda: bertprobe.nsp(shuffle="", model="tiny-mlm"), "shuffle='' is not a file path"),
        # The interval the message gives is the one checked: --rate 1 (mask every piece) is allowed.
        (
            lambda: bertprobe.fill("The cat sat.", mode="bert", rate=1.5, model="tiny-mlm"),
            "rate=1.5 is not a number in (0, 1]",
        ),
        # --batch-size is a count up to 2**24: "8" was a raw TypeError; True, 1.5 and 2**30 ran silently.
        (lambda: bertprobe.score("The cat sat.", model="tiny-mlm", batch_size="8"), "batch_size='8' is not a whole"),
        (lambda: bertprobe.score("The cat sat.", model="tiny-mlm", batch_size=True), "batch_size=True is not a whole"),
        (lambda: bertprobe.score("The cat sat.", model="tiny-mlm", batch_size=2**30), "batch_size=1073741824 is not"),
        (lambda: bertprobe.cloze(model="tiny-mlm", cloze_set=["heldout"]), "cloze_set=['heldout'] is not text"),
        # --list refuses --seed -1 as every command does; the API echoed it in to_dict.
        (lambda: bertprobe.sense(list_sets=True, seed=-1), "seed=-1 is not a whole number"),
        # pretrain's budget and sizes: a str was a raw TypeError, steps=True trained one step.
        (lambda: bertprobe.pretrain("c.txt", steps="3"), "steps='3' is not a whole number"),
        (lambda: bertprobe.pretrain("c.txt", steps=True), "steps=True is not a whole number"),
        (lambda: bertprobe.pretrain("c.txt", minutes="3"), "minutes='3' is not a number in (0, 43200]"),
        (lambda: bertprobe.pretrain("c.txt", minutes=50_000), "minutes=50000 is not a number in (0, 43200]"),
        (lambda: bertprobe.pretrain("c.txt", steps=1, warmup="0.1"), "warmup='0.1' is not a number in [0, 0.9]"),
        (lambda: bertprobe.pretrain("c.txt", steps=1, batch_size=2.5), "batch_size=2.5 is not a whole number"),
        (lambda: bertprobe.pretrain("c.txt", steps=1, max_length=True), "max_length=True is not a whole number"),
    ],
)
def test_values_the_cli_would_refuse_raise_an_input_error(call, phrase):
    with pytest.raises(InputError, match=re.escape(phrase)) as caught:
        call()
    assert caught.value.hint


def test_C_auto_is_the_cli_spelling_of_cross_validation(tmp_path):
    # Refused as "not a positive number" before; now taken as --C auto is, so the next problem is the file.
    with pytest.raises(BertprobeError, match="no such file"):
        bertprobe.cls_train(data=tmp_path / "missing.csv", C="auto")


def test_load_announces_what_auto_chose_as_the_commands_do(capsys):
    lm = bertprobe.load(head="mlm")  # HF_HUB_OFFLINE: auto falls back to a bundled model
    assert lm.notices and capsys.readouterr().err.count(lm.notices[0][:40]) == 1
    bertprobe.fill("The cat sat on the [MASK].", model=lm)
    assert lm.notices[0][:40] not in capsys.readouterr().err  # said once, not again for each command


def test_an_empty_sentence_is_refused_as_the_cli_refuses_it_not_replaced_by_the_builtin_set():
    # sense("bank", sentence="") ran the built-in river/money set: a result for sentences the caller never gave.
    import bertprobe
    from bertprobe.errors import InputError

    with pytest.raises(InputError, match="only 1 sentence was given"):
        bertprobe.sense("bank", sentence="", model="minilm")


def test_a_model_folder_given_as_a_path_is_the_same_model_as_its_str(mlm_path):
    as_str = bertprobe.fill("The cat sat on the [MASK].", model=str(mlm_path)).to_dict()
    as_path = bertprobe.fill("The cat sat on the [MASK].", model=Path(mlm_path)).to_dict()
    assert as_path["masks"] == as_str["masks"]
    assert bertprobe.load(Path(mlm_path), head="mlm").name == bertprobe.load(str(mlm_path), head="mlm").name


@pytest.mark.parametrize(
    "options, message",
    [
        ({"device": "gpu"}, "device='gpu' is not one of"),
        ({"dtype": 16}, "dtype=16 is not one of"),
        ({"revision": 3}, "revision=3 is not text"),
        ({"devcie": "cpu"}, "takes no devcie"),
    ],
)
def test_load_checks_its_options_as_the_commands_do(options, message):
    with pytest.raises(InputError, match=message):
        bertprobe.load("tiny-mlm", **options)


@pytest.mark.parametrize(
    ("cli_args", "options", "phrase"),
    [
        (["--device", "gpu"], {"device": "gpu"}, "device='gpu' is not one of"),
        (["--dtype", "16"], {"dtype": 16}, "dtype=16 is not one of"),
        (["--pool", "max"], {"pool": "max"}, "pool='max' is not one of mean, first, last"),
        (["--clusters", 1], {"clusters": 1}, "clusters=1 is not a whole number"),
        (["--layer", "x"], {"layer": "x"}, "layer='x' is not a layer number"),
        (["--batch-size", 0], {"batch_size": 0}, "batch_size=0 is not a whole number"),
        (["--occurrence", 0], {"occurrence": 0}, "occurrence=0 is not a whole number"),
    ],
)
def test_sense_list_refuses_what_sense_list_refuses(cli, cli_args, options, phrase):
    # sense(list_sets=True) skipped every check: device="gpu" or pool="max" was listed without a word.
    code, _, _ = cli("sense", "--list", *cli_args, "--json")
    assert code != 0
    with pytest.raises(InputError, match=re.escape(phrase)) as caught:
        bertprobe.sense(list_sets=True, **options)
    assert caught.value.hint


def test_sense_list_echoes_only_a_text_revision():
    # revision=3 came back as the number 3 in to_dict, a document `sense --list --json` never prints.
    with pytest.raises(InputError, match=re.escape("revision=3 is not text")):
        bertprobe.sense(list_sets=True, revision=3)
    with pytest.raises(InputError, match=re.escape("offline='no' is not True or False")):
        bertprobe.sense(list_sets=True, offline="no")


def test_cls_predict_refuses_an_unknown_pooling_as_the_cli_does(tmp_path):
    # It was taken for a pooling to compare with the probe's: "trained on cls pooling, not maxx", hinting
    # `cls-train --pool maxx`, a command that fails; and only once the probe was read.
    with pytest.raises(InputError, match=re.escape("pool='maxx' is not one of cls, mean, max, pooler")) as caught:
        bertprobe.cls_predict(tmp_path / "no-probe", ["a fine film"], pool="maxx")
    assert caught.value.hint


def test_defaults_are_the_cli_defaults():
    import enum
    import inspect

    from bertprobe import api
    from bertprobe.cli import attention, attribute, cloze, fillmask, nsp, pretrain, probe, score, sense
    from bertprobe.cli.options import SHARED

    commands = [
        (api.fill, fillmask.fillmask_cli),
        (api.score, score.score_cli),
        (api.sense, sense.sense_cli),
        (api.cls_train, probe.cls_train_cli),
        (api.cls_predict, probe.cls_predict_cli),
        (api.attribute, attribute.attribute_cli),
        (api.attention, attention.attention_cli),
        (api.nsp, nsp.nsp_cli),
        (api.cloze, cloze.cloze_cli),
        (api.pretrain, pretrain.pretrain_cli),
    ]

    def plain(value):
        return value.value if isinstance(value, enum.Enum) else str(value) if isinstance(value, Path) else value

    for function, command in commands:
        flags = {"c": "C"}  # the CLI's --C
        cli_defaults = {name: plain(default) for name, (_, default) in SHARED.items()}
        cli_defaults |= {
            flags.get(name, name): plain(p.default) for name, p in inspect.signature(command).parameters.items()
        }
        for name, p in inspect.signature(function).parameters.items():
            if name in cli_defaults and p.default is not inspect.Parameter.empty:
                assert plain(p.default) == cli_defaults[name], (function.__name__, name)


def test_pretrain_takes_its_source_as_a_path_and_refuses_what_is_no_text(tiny_pretraining_path, tmp_path):
    corpus = EXAMPLES / "kitchen.txt"
    options = {"steps": 1, "batch_size": 2, "max_length": 16}
    as_str = bertprobe.pretrain(corpus, source=str(tiny_pretraining_path), out=tmp_path / "str", **options)
    as_path = bertprobe.pretrain(corpus, source=Path(tiny_pretraining_path), out=tmp_path / "path", **options)
    docs = [as_str.to_dict(), as_path.to_dict()]
    for doc in docs:
        doc.pop("out"), doc.pop("seconds"), doc["settings"].pop("out")
    assert docs[0] == docs[1]
    # Both were raw errors deep inside: a TypeError, and for a Path an AttributeError ('strip').
    with pytest.raises(InputError, match=re.escape("source=3 is not text")):
        bertprobe.pretrain(corpus, source=3, out=tmp_path / "int", **options)
    with pytest.raises(InputError, match=re.escape("probe: item 1 (3) is not text")):
        bertprobe.pretrain(corpus, probe=[3], out=tmp_path / "probe", **options)


def test_a_numpy_layer_is_the_same_layer_as_its_int(tiny_encoder_path, tmp_path):
    import numpy as np

    # layer accepts numpy's integers, but cls_train then failed after all its work, saving the probe:
    # "TypeError: Object of type int64 is not JSON serializable".
    options = {"data": EXAMPLES / "sentiment.csv", "model": str(tiny_encoder_path), "max_train": 30, "no_cache": True}
    as_numpy = bertprobe.cls_train(layer=np.int64(1), out=tmp_path / "numpy", **options).to_dict()
    as_int = bertprobe.cls_train(layer=1, out=tmp_path / "int", **options).to_dict()
    for doc in (as_numpy, as_int):
        doc.pop("saved_to"), doc.pop("seconds")
    assert as_numpy == as_int
    texts = ["a gripping, funny film"]
    model = str(tiny_encoder_path)
    predicted = bertprobe.cls_predict(tmp_path / "numpy", texts, layer=np.int64(1), model=model).to_dict()
    expected = bertprobe.cls_predict(tmp_path / "int", texts, model=model).to_dict()
    assert Path(predicted.pop("probe")).name == "numpy" and Path(expected.pop("probe")).name == "int"
    assert predicted == expected


def test_numpy_integers_count_as_their_ints(tiny_encoder_path, tmp_path):
    import numpy as np

    # Counts straight from numpy or pandas were refused ("seed=np.int64(3) is not a whole number"); taken as they
    # were, they would reach random.seed and the JSON a probe or a run is saved with.
    text = "The cat sat on the [MASK]."
    as_numpy = bertprobe.fill(text, model="tiny-mlm", top_k=np.int32(4), seed=np.int64(3)).to_dict()
    assert as_numpy == bertprobe.fill(text, model="tiny-mlm", top_k=4, seed=3).to_dict()
    assert type(as_numpy["seed"]) is int and json.loads(json.dumps(as_numpy)) == as_numpy
    unmasked = "The quick brown fox jumps over the lazy dog near the river bank."
    drawn = bertprobe.fill(unmasked, mode="bert", samples=np.int16(3), seed=np.uint32(11), model="tiny-mlm")
    assert drawn.to_dict() == bertprobe.fill(unmasked, mode="bert", samples=3, seed=11, model="tiny-mlm").to_dict()
    scored = bertprobe.score("The cat sat on the mat.", model="tiny-mlm", batch_size=np.int64(64)).to_dict()
    assert scored == bertprobe.score("The cat sat on the mat.", model="tiny-mlm", batch_size=64).to_dict()
    looked = bertprobe.attention("The cat sat on the mat.", model="minilm", head=np.int64(2)).to_dict()
    assert looked == bertprobe.attention("The cat sat on the mat.", model="minilm", head=2).to_dict()
    options = {"data": EXAMPLES / "sentiment.csv", "model": str(tiny_encoder_path), "no_cache": True}
    trained = bertprobe.cls_train(max_train=np.int64(30), seed=np.int64(2), out=tmp_path / "numpy", **options)
    expected = bertprobe.cls_train(max_train=30, seed=2, out=tmp_path / "int", **options).to_dict()
    got = trained.to_dict()
    for doc in (got, expected):
        doc.pop("saved_to"), doc.pop("seconds")
    assert got == expected
    assert json.loads((tmp_path / "numpy" / "probe.json").read_text())["seed"] == 2  # saved as a plain int


@pytest.mark.parametrize(
    ("options", "phrase"),
    [
        ({"top_k": "np.True_"}, "top_k=np.True_ is not a whole number"),
        ({"top_k": "np.float64(2.5)"}, "top_k=np.float64(2.5) is not a whole number"),
        ({"seed": "np.float32(3.0)"}, "seed=np.float32(3.0) is not a whole number"),
        ({"seed": "np.int64(-1)"}, "seed=np.int64(-1) is not a whole number"),
        ({"top_k": "True"}, "top_k=True is not a whole number"),
    ],
)
def test_numpy_values_that_are_no_count_are_refused(options, phrase):
    import numpy as np

    # numpy's bools and floats are no counts, as True and 2.5 are none (np.True_ is no numbers.Integral).
    values = {name: eval(value, {"np": np}) for name, value in options.items()}
    with pytest.raises(InputError, match=re.escape(phrase)) as caught:
        bertprobe.fill("The cat sat on the [MASK].", model="tiny-mlm", **values)
    assert caught.value.hint


def test_a_special_token_written_in_a_text_is_told_by_every_function(capsys, tiny_pretraining_path):
    sep = "'[SEP]' in your text is read as the model's special [SEP] token"
    mask = "'[MASK]' in your text is read as the model's special [MASK] token"
    filled = bertprobe.fill("The cat sat. [SEP] It sat on the [MASK].", model="tiny-mlm")
    assert [n for n in filled.to_dict()["notices"] if n.startswith(sep)] and sep in capsys.readouterr().err
    # fillmask asks for [MASK]; attention and nsp read it as the mask, which the user may not know.
    assert not [n for n in filled.notices if n.startswith(mask)]
    looked = bertprobe.attention("The cat sat on the [MASK].", model="minilm")
    assert [n for n in looked.notices if n.startswith(mask)] and mask in capsys.readouterr().err
    paired = bertprobe.nsp("I was hungry. [SEP]", "So I ate.", model=str(tiny_pretraining_path))
    assert [n for n in paired.notices if n.startswith(sep)] and sep in capsys.readouterr().err
    # Many texts: said once, with how many texts hold it, not once for each.
    texts = ["A [SEP] b [MASK].", "The [MASK] sat.", "C [SEP] [MASK]."]
    many = bertprobe.fill(texts, model="tiny-mlm")
    assert [any(n.startswith(sep) for n in r.notices) for r in many] == [True, False, True]
    err = capsys.readouterr().err
    assert err.count(sep) == 1 and f"2 text(s): {sep}" in err
    plain = bertprobe.score("The cat sat on the mat.", model="tiny-mlm")
    assert not [n for n in plain.notices if "special" in n] and "special" not in capsys.readouterr().err


def test_a_roberta_special_token_is_told_in_its_own_spelling(tiny_roberta_path):
    scored = bertprobe.score("the cat <s> sat on the mat [SEP]", model=str(tiny_roberta_path))
    told = [n for n in scored.notices if "special" in n]
    assert len(told) == 1 and told[0].startswith("'<s>' in your text is read as the model's special <s> token")


def test_a_bad_text_in_a_list_is_not_told_to_use_a_cli_option():
    # "pass --on-bad skip" is no advice to a Python caller: the API has no such option.
    with pytest.raises(BertprobeError) as refused:
        bertprobe.fill(["The cat sat on the [MASK].", "no mask here"], model="tiny-mlm")
    assert "text 2" in refused.value.message and "--on-bad" not in refused.value.hint


def test_sense_list_reports_a_loaded_models_own_revision():
    import dataclasses

    lm = dataclasses.replace(bertprobe.load("minilm"), revision="abc123")  # as a hub model loaded at a commit
    assert bertprobe.sense(list_sets=True, model=lm).to_dict()["revision"] == "abc123"


def test_attribute_settings_no_text_can_run_with_are_refused_before_the_model_loads():
    import bertprobe
    from bertprobe.errors import InputError

    # A model that does not exist: the settings are refused first, as the CLI refuses them.
    with pytest.raises(InputError, match="--auto-steps has no room to double"):
        bertprobe.attribute("The cat sat on the [MASK].", model="no/such-model", steps=4, auto_steps=True, max_steps=2)


def test_a_call_leaves_the_callers_random_generators_as_it_found_them(tiny_pretraining_path, tmp_path):
    import contextlib
    import random

    import numpy as np
    import torch

    # Each call seeded python, numpy and torch for its own work and left them so: a notebook loop that samples with
    # random.sample or np.random between calls drew the same "random" sample after every call (seeded with 0).
    def seeded_draws():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    def reseed():
        random.seed(7), np.random.seed(7), torch.manual_seed(7)

    reseed()
    expected = seeded_draws()
    sentences = ["We fished from the river bank.", "The bank approved the loan.", "She sat on the grassy bank."]
    calls = [
        lambda: bertprobe.fill("The quick brown fox jumps over the lazy dog.", mode="bert", model="tiny-mlm", seed=3),
        lambda: bertprobe.score("The cat sat on the mat.", model="tiny-mlm"),
        lambda: bertprobe.sense("bank", sentence=sentences, model="minilm", clusters=2),
        lambda: bertprobe.attribute("The cat sat on the [MASK].", model="tiny-mlm", steps=2, random_orders=2),
        lambda: bertprobe.nsp(shuffle=EXAMPLES / "story.txt", model=str(tiny_pretraining_path)),
        lambda: bertprobe.pretrain(
            EXAMPLES / "kitchen.txt",
            source=str(tiny_pretraining_path),
            out=tmp_path / "run",
            steps=1,
            batch_size=2,
            max_length=16,
        ),
        lambda: bertprobe.fill("The cat sat on the mat.", model="tiny-mlm"),  # refused after the seeding
    ]
    for number, call in enumerate(calls, start=1):
        reseed()
        with contextlib.suppress(BertprobeError):
            call()
        assert seeded_draws() == expected, f"call {number}"
    # Inside, each call is still seeded as the CLI seeds it: the same result whatever state it was called in.
    text = "The quick brown fox jumps over the lazy dog."
    first = bertprobe.fill(text, mode="bert", model="tiny-mlm", seed=3).to_dict()
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    assert bertprobe.fill(text, mode="bert", model="tiny-mlm", seed=3).to_dict() == first


def test_a_call_leaves_transformers_logging_and_progress_bars_as_it_found_them(
    tiny_encoder_path, tmp_path, monkeypatch
):
    import logging
    import shutil

    import huggingface_hub.utils as hub_utils
    from transformers.utils import logging as hf_logging

    # Loading through transformers set its logging to errors only and turned off its (and the hub's) progress bars
    # for the rest of the process: a notebook's own from_pretrained then hid "newly initialized weights" warnings.
    model = tmp_path / "tiny"
    shutil.copytree(tiny_encoder_path, model)  # not loaded before in this process: the loader runs
    monkeypatch.setenv("BERTPROBE_BACKEND", "transformers")
    hf_logging.set_verbosity_warning()
    hf_logging.enable_progress_bar()
    lm = bertprobe.load(str(model))
    assert hf_logging.get_verbosity() == logging.WARNING and hf_logging.is_progress_bar_enabled()
    bertprobe.attention("The cat sat on the mat.", model=str(model), layer=1)
    bertprobe.sense("bank", sentence=["The river bank.", "The bank loan.", "A bank."], model=lm)
    assert hf_logging.get_verbosity() == logging.WARNING
    assert hf_logging.is_progress_bar_enabled() and not hub_utils.are_progress_bars_disabled()
    hf_logging.set_verbosity_info()  # a level the caller chose is theirs too
    bertprobe.attention("The cat sat on the mat.", model=lm)
    assert hf_logging.get_verbosity() == logging.INFO
    hf_logging.set_verbosity_warning()


@pytest.mark.parametrize(
    ("call", "message", "hint"),
    [
        (lambda: bertprobe.fill("The [MASK] sat.", model="tiny-mlm", topk=5), "fill() takes no option topk", "top_k"),
        (lambda: bertprobe.score("The cat sat.", modle="tiny-mlm"), "score() takes no option modle", "model"),
        (lambda: bertprobe.sense("bank", sentences_=["a bank"]), "sense() takes no option sentences_", "sentences"),
        (lambda: bertprobe.attribute("The [MASK] sat.", targt="cat"), "attribute() takes no option targt", "target"),
        (lambda: bertprobe.cls_train(date="x.csv"), "cls_train() takes no option date", "data"),
        (lambda: bertprobe.fill(), "fill() missing a required argument: 'text'", "help(bertprobe.api.fill)"),
        (lambda: bertprobe.fill("a", "b"), "fill() too many positional arguments", "It takes text by position"),
        (
            lambda: bertprobe.nsp("a", "b", "c"),
            "nsp() too many positional arguments",
            "It takes first, second by position",
        ),
        (
            lambda: bertprobe.cls_predict("runs/x"),
            "cls_predict() missing a required argument: 'texts'",
            "help(bertprobe.api.cls_predict)",
        ),
        (lambda: bertprobe.cls_train("x.csv"), "cls_train() too many positional arguments", "every option by name"),
    ],
)
def test_a_misspelt_or_misplaced_argument_is_an_input_error_that_names_the_option_meant(call, message, hint):
    # These were raw TypeErrors ("fill() got an unexpected keyword argument 'topk'") without the option meant.
    with pytest.raises(InputError, match=re.escape(message)) as caught:
        call()
    assert hint in caught.value.hint


def test_a_table_or_bytes_given_as_texts_is_refused_not_read_by_its_keys():
    class Frame:  # what a pandas DataFrame does when iterated: its column names
        columns = ("text", "label")

        def __iter__(self):
            return iter(self.columns)

    # Both ran silently on the keys ("text", "label"); bytes were refused as "item 1 (84) is not text".
    with pytest.raises(
        InputError, match=re.escape("texts is a Frame, whose keys or column names are no texts")
    ) as caught:
        bertprobe.score(Frame(), model="tiny-mlm")
    assert "list(table['text'])" in caught.value.hint
    with pytest.raises(InputError, match=re.escape("text is a dict")):
        bertprobe.fill({"The cat sat on the [MASK].": 1}, model="tiny-mlm")
    with pytest.raises(InputError, match=re.escape("texts=b'a fine film' is not text")) as caught:
        bertprobe.cls_predict("runs/probe", b"a fine film")
    assert "decode" in caught.value.hint


def test_a_loaded_model_edited_by_the_user_never_reaches_a_call_by_name(capsys):
    import torch

    import bertprobe

    text = "The cat sat on the [MASK]."
    before = bertprobe.fill(text, model="tiny-mlm").to_dict()["masks"]
    mine = bertprobe.load("tiny-mlm", head="mlm")
    with torch.no_grad():  # an ablation in a notebook
        for parameter in mine.model.parameters():
            parameter.mul_(0.5)
    edited = bertprobe.fill(text, model=mine).to_dict()["masks"]
    assert edited != before  # the edit is what the user asked to run on
    assert bertprobe.fill(text, model="tiny-mlm").to_dict()["masks"] == before  # by name: the model on disk
    # Another head than the one passed: a fresh load, and said so (the edit is not in it).
    capsys.readouterr()
    encoder = bertprobe.load("tiny-mlm")
    bertprobe.fill(text, model=encoder)
    said = " ".join(capsys.readouterr().err.split())
    assert "loaded with the encoder head and this command needs the mlm head" in said


def test_load_with_options_by_position_is_an_input_error():
    import bertprobe
    from bertprobe.errors import InputError

    with pytest.raises(InputError, match="its options by name") as refused:
        bertprobe.load("tiny-mlm", "mlm", "cpu")
    assert 'device="cpu"' in refused.value.hint
