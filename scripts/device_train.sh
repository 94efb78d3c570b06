#!/bin/sh
# Train the offline MLM + NSP model in one call of the device tool, then score it (scripts/RECIPE.md).
#
# Run from the repository root. RUNS holds what the machine cannot fetch (it has no network):
#   RUNS/corpus.txt.gz  from scripts/build_corpus.py, gzipped (12.7 MB, 4 MB gzipped)
#   RUNS/minilm16       MiniLM as float16, from scripts/export_checkpoint.py (45 MB)
# With the repository (11 MB) that is about 58 MiB of the 64 MiB that may travel.
# OUT receives at most 8 files of at most 16 MiB (the device tool's limits): the pretrain report,
# the scores, config.json, the weights in 15 MiB parts and their SHA-256. Join them here with
#   cat OUT/model.safetensors.part-* > DIR/model.safetensors && (cd DIR && sha256sum -c OUT/model.sha256)
#
# Environment: MINUTES (training budget, default 6), BATCH (512), DEVICE (cuda), PYTHON (python3),
# NSP_NEGATIVES (mixed: half from the same chapter, half from another; see RECIPE.md for why).
# Checked on the CPU with: MINUTES=0.2 BATCH=8 DEVICE=cpu sh scripts/device_train.sh runs /tmp/out
set -eu
RUNS=${1:?usage: device_train.sh RUNS_DIR OUT_DIR}
DEST=${2:?usage: device_train.sh RUNS_DIR OUT_DIR}
MINUTES=${MINUTES:-6}
BATCH=${BATCH:-512}
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
NSP_NEGATIVES=${NSP_NEGATIVES:-mixed}
export PYTHONPATH="$PWD" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 BERTPROBE_CACHE="$RUNS/cache"
MODEL="$RUNS/mini-bert"
mkdir -p "$DEST"
[ -f "$RUNS/corpus.txt" ] || gunzip -c "$RUNS/corpus.txt.gz" >"$RUNS/corpus.txt"

"$PY" -m bertprobe pretrain --from "$RUNS/minilm16" --corpus "$RUNS/corpus.txt" --out "$MODEL" --nsp \
    --minutes "$MINUTES" --batch-size "$BATCH" --max-length 48 --lr 3e-4 --warmup 0.04 --seed 0 \
    --nsp-negatives "$NSP_NEGATIVES" --save-minutes 2 --save-dtype float16 --device "$DEVICE" \
    --probe "Paris is the capital of [MASK]." --probe "It was raining, so I took my [MASK]." \
    --json >"$DEST/train.json"

# Scores, one JSON document a line: the held-out and built-in cloze sets, then NSP on an unseen story.
"$PY" -m bertprobe cloze --set heldout -m "$MODEL" --device "$DEVICE" --json >"$RUNS/score-1.json"
"$PY" -m bertprobe cloze --set builtin -m "$MODEL" --device "$DEVICE" --json >"$RUNS/score-2.json"
for seed in 0 1 2 3 4; do
    "$PY" -m bertprobe nsp --shuffle scripts/nsp_story.txt -m "$MODEL" --seed "$seed" --device "$DEVICE" \
        --json >"$RUNS/score-nsp-$seed.json"
done
"$PY" -c 'import json, sys; [print(json.dumps(json.load(open(f)))) for f in sys.argv[1:]]' \
    "$RUNS"/score-1.json "$RUNS"/score-2.json "$RUNS"/score-nsp-*.json >"$DEST/scores.jsonl"

cp "$MODEL/config.json" "$DEST/config.json"
(cd "$MODEL" && sha256sum model.safetensors) >"$DEST/model.sha256"
split -b 15m "$MODEL/model.safetensors" "$DEST/model.safetensors.part-"
ls -l "$DEST"
