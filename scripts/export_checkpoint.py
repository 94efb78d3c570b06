"""Copy a pretrain output directory as a shippable checkpoint: config, tokenizer and weights only.

Drops the optimizer and trainer state and stores the weights in the dtype asked for.

    python scripts/export_checkpoint.py runs/tiny-mlm bertprobe/data/models/tiny-mlm --dtype float16
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

KEEP = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--dtype", default="float16", choices=["float32", "float16", "bfloat16"])
    parser.add_argument(
        "--drop-nsp",
        action="store_true",
        help="Leave the NSP head out (a head that has not learnt must not become the offline default for `nsp`).",
    )
    args = parser.parse_args()

    import torch
    from safetensors.torch import load_file, save_file

    from bertprobe.atomic import plain_file

    args.target.mkdir(parents=True, exist_ok=True)
    for name in KEEP:
        if (args.source / name).is_file():
            shutil.copyfile(args.source / name, args.target / name)
    config = json.loads((args.target / "config.json").read_text())
    config["torch_dtype"] = args.dtype
    weights = load_file(str(args.source / "model.safetensors"))
    if args.drop_nsp:
        weights = {k: v for k, v in weights.items() if not k.startswith("cls.seq_relationship.")}
        if config.get("architectures") == ["BertForPreTraining"]:
            config["architectures"] = ["BertForMaskedLM"]
    (args.target / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    dtype = getattr(torch, args.dtype)
    save_file({k: v.to(dtype).contiguous() for k, v in weights.items()}, str(args.target / "model.safetensors"),
              metadata={"format": "pt"})  # fmt: skip
    plain_file(args.target / "model.safetensors")  # save_file makes it 0600; a shipped file is read by all
    size = sum(f.stat().st_size for f in args.target.iterdir())
    print(f"{args.target}: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
