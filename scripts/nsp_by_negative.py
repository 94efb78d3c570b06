"""How an NSP head answers on a corpus's own pairs, by kind of second sentence.

    python scripts/nsp_by_negative.py MODEL_DIR CORPUS [--pairs 300] [--max-length 48] [--seed 7]

MODEL_DIR is a BertForPreTraining checkpoint with its NSP head (`export_checkpoint.py` without
`--drop-nsp`); CORPUS is `pretrain`'s format (one sentence a line, blank lines between documents).
For true next sentences, other sentences of the same document and sentences of another document
it prints how many the head calls "next" and its mean P(next): a head that ranks true next
sentences above same-document ones has learnt some coherence even where its 0.5 threshold hides it.
Pairs are cut to --max-length by `pretrain`'s own `cut_pair` (the junction kept).
"""

from __future__ import annotations

import argparse
import random

import torch
from transformers import AutoTokenizer, BertForPreTraining

from bertprobe.pretrain import cut_pair


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("corpus")
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = BertForPreTraining.from_pretrained(args.model, dtype=torch.float32).eval()
    with open(args.corpus, encoding="utf-8") as handle:
        documents = [[line for line in block.split("\n") if line.strip()] for block in handle.read().split("\n\n")]
    documents = [lines for lines in documents if len(lines) > 3]  # room for a same-document sentence that is not next
    draw = random.Random(args.seed)

    def encode(first: str, second: str) -> tuple[list[int], list[int]]:
        a, b = cut_pair(
            tokenizer.encode(first, add_special_tokens=False),
            tokenizer.encode(second, add_special_tokens=False),
            args.max_length,
        )
        ids = [tokenizer.cls_token_id, *a, tokenizer.sep_token_id, *b, tokenizer.sep_token_id]
        return ids, [0] * (len(a) + 2) + [1] * (len(b) + 1)

    def second_sentence(kind: str, document: int, line: int) -> str:
        lines = documents[document]
        if kind == "next":
            return lines[line + 1]
        if kind == "same":
            other = draw.choice([i for i in range(len(lines)) if i not in (line, line + 1)])
            return lines[other]
        other = draw.choice([d for d in range(len(documents)) if d != document])
        return draw.choice(documents[other])

    for kind, name in (("next", "true next sentence"), ("same", "same document"), ("other", "another document")):
        called, total = 0, 0.0
        for _ in range(args.pairs):
            document = draw.randrange(len(documents))
            line = draw.randrange(len(documents[document]) - 1)
            ids, segments = encode(documents[document][line], second_sentence(kind, document, line))
            with torch.inference_mode():
                logits = model(input_ids=torch.tensor([ids]), token_type_ids=torch.tensor([segments]))
            probability = logits.seq_relationship_logits.softmax(-1)[0, 0].item()  # class 0: "B follows A"
            called += probability >= 0.5
            total += probability
        print(f"{name:>20}: called next {called / args.pairs:.0%}, mean P(next) {total / args.pairs:.3f}")


if __name__ == "__main__":
    main()
