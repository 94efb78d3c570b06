"""How close `attribute` (Integrated Gradients, 50 steps) comes to its floor, and what naive Captum costs.

The floor: the same 50 interpolated inputs pushed through the same model and probe as ONE batched
forward + backward pass, written here in plain torch. Anything IG must do on top (baseline, F(x)
and F(baseline), Captum's bookkeeping) shows up as the ratio. Naive Captum is the tutorial
recipe: LayerIntegratedGradients on the embedding layer with a forward function over input ids,
its convergence delta computed by Captum; once with all steps in one batch (no
internal_batch_size) and once one step per pass (internal_batch_size=1).

Runs on the offline MiniLM (a 6-layer, 384-wide BERT) with a linear probe of random weights on
the [CLS] vector: timings do not depend on what the probe learned. The rows take turns, repeat by
repeat, so that a busy shared machine slows them alike.

    .venv/bin/python benchmarks/bench_attribute.py [--repeats 5] [--threads N] [--device cpu]
"""

from __future__ import annotations

import argparse

from timing import interleaved_medians, load_after, machine

TEXT = "a gripping, funny and heartfelt film about two estranged brothers who finally learn to forgive it"
STEPS = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch
    from captum.attr import LayerIntegratedGradients

    from bertprobe import models
    from bertprobe.attribute import AttributionSettings, attribute_probe
    from bertprobe.probe import SavedProbe

    if args.threads:
        torch.set_num_threads(args.threads)
    lm = models.load("minilm", "encoder", device=args.device)
    torch.manual_seed(0)
    hidden = lm.hidden_size
    probe = SavedProbe(
        coef=torch.randn(1, hidden) / hidden**0.5,
        intercept=torch.zeros(1),
        mean=torch.zeros(hidden),
        scale=torch.ones(hidden),
        layer=lm.num_layers,
        pooling="cls",
        labels=["negative", "positive"],
        meta={"fingerprint": lm.fingerprint, "model": lm.name, "max_length": 512},
    )
    encoding = lm.tokenizer.encode(TEXT)
    length = len(encoding)
    assert length == 20, length
    device = lm.device
    ids = torch.tensor([encoding.ids], device=device)
    for parameter in lm.model.parameters():
        parameter.requires_grad_(False)
    embed = lm.input_embeddings()

    def score(embeds: torch.Tensor) -> torch.Tensor:
        out = lm.model(
            inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long, device=device)
        )
        logits = probe.logits(out["last_hidden_state"][:, 0])
        return logits[:, 1] - logits[:, 0]

    def floor() -> None:
        with torch.no_grad():
            x = embed(ids)
            b = embed(torch.full_like(ids, lm.tokenizer.pad_token_id))
        alphas = torch.linspace(0, 1, STEPS, device=device).view(-1, 1, 1)
        path = (b + alphas * (x - b)).requires_grad_()
        (grads,) = torch.autograd.grad(score(path).sum(), path)
        float((grads.mean(0) * (x - b)[0]).sum())

    def ours() -> None:
        settings = AttributionSettings(method="ig", steps=STEPS, faithfulness=False)
        attribute_probe(lm, TEXT, probe, settings=settings)

    def ours_with_faithfulness() -> None:
        attribute_probe(lm, TEXT, probe, settings=AttributionSettings(method="ig", steps=STEPS))

    def by_ids(input_ids: torch.Tensor) -> torch.Tensor:
        out = lm.model(input_ids=input_ids)
        logits = probe.logits(out["last_hidden_state"][:, 0])
        return logits[:, 1] - logits[:, 0]

    baseline_ids = ids.clone()
    baseline_ids[0, 1:-1] = lm.tokenizer.pad_token_id

    def naive_captum(internal_batch_size: int | None) -> None:
        lig = LayerIntegratedGradients(by_ids, embed)
        lig.attribute(
            ids,
            baselines=baseline_ids,
            n_steps=STEPS,
            internal_batch_size=internal_batch_size,
            return_convergence_delta=True,
        )

    print(machine())
    print(f"device {device}; MiniLM ({lm.num_layers} layers, {hidden} wide), {length} word pieces, IG {STEPS} steps")
    print(f"median of {args.repeats} runs, the rows taking turns:")
    rows = {
        "floor: 50 interpolated inputs, one batched forward + backward": floor,
        "bertprobe attribute --method ig (no faithfulness)": ours,
        "bertprobe attribute --method ig (with faithfulness, 20 random orders)": ours_with_faithfulness,
        "naive Captum LIG, all steps in one batch, with its delta": lambda: naive_captum(None),
        "naive Captum LIG, internal_batch_size=1 (one step per pass)": lambda: naive_captum(1),
    }
    medians = interleaved_medians(rows, args.repeats)
    base = medians["floor: 50 interpolated inputs, one batched forward + backward"]
    for name, seconds in medians.items():
        print(f"  {name:<72} {seconds * 1000:8.1f} ms  {seconds / base:5.2f}x floor")
    print(load_after())


if __name__ == "__main__":
    main()
