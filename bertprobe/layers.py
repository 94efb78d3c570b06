"""One meaning of ``--layer`` in every command, and of ``--head``.

0 = the embedding output, 1..L = the encoder layers, negative numbers count from the end
(-1 = the last layer). Attention exists in encoder layers only, so there it is 1..L.
"""

from __future__ import annotations

from bertprobe.errors import InputError


def resolve_layer(layer: int, num_layers: int, model: str, embeddings: bool = True) -> int:
    """The layer index (0 = embeddings) that ``layer`` names, or one line saying which layers exist."""
    low = 0 if embeddings else 1
    chosen = layer + num_layers + 1 if layer < 0 else layer
    if low <= chosen <= num_layers:
        return chosen
    if not embeddings and layer == 0:
        raise InputError(
            "--layer 0 is the embedding output, which has no attention",
            hint=f"Pick an encoder layer from 1 to {num_layers} of {model}, or -1 for the last.",
        )
    first = "1" if not embeddings else "0 (embeddings)"
    raise InputError(
        f"--layer {layer} does not exist: {model} has layers {first} to {num_layers}",
        hint=f"Pick a layer from {low} to {num_layers}, or -1 to -{num_layers - low + 1} counted from the end.",
    )


def resolve_head(head: int, num_heads: int, model: str) -> int:
    """A 1-based attention head, checked against the model's heads per layer."""
    if 1 <= head <= num_heads:
        return head
    raise InputError(
        f"--head {head} does not exist: {model} has heads 1 to {num_heads} in each layer",
        hint=f"Pick a head from 1 to {num_heads}, or leave --head out for the mean over heads.",
    )
