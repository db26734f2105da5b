#!/usr/bin/env bash
# Reproduce the shipped default model (sst_ros/models/default.pt) from scratch on a CPU.
# Measured on the idle 2-core development machine: simulation about 3 min, training about
# 95 min (6000 steps at ~0.9 s/step, 2 threads); details in training/README.md.
# Seeds are fixed: simulation seeds 1 (train) and 2 (validation), training seed 0.
set -euo pipefail
cd "$(dirname "$0")/.."
source activate.sh
DATA=training/data
RUN=${RUN:-training/runs/default}
WORKERS=${WORKERS:-2}

# 1. Simulated training and validation clip sets (ReSpeaker 4-mic, 6 s scenes).
sst simulate --config training/configs/sim_train.yaml --array respeaker_usb_v2 \
    --n 3000 --duration 6 --seed 1 --workers "$WORKERS" --out "$DATA/default_train" --no-progress
sst simulate --config training/configs/sim_train.yaml --array respeaker_usb_v2 \
    --n 150 --duration 6 --seed 2 --workers "$WORKERS" --out "$DATA/default_val" --no-progress

# 2. Train (THREADS=1 can be faster on a machine shared with other jobs); resumable with:
#    sst train --config training/configs/default.yaml --out "$RUN" --resume
sst train --config training/configs/default.yaml --array respeaker_usb_v2 \
    --data "$DATA/default_train" --val "$DATA/default_val" --out "$RUN" --threads "${THREADS:-2}"

# 3. Ship the best checkpoint (lowest validation MAE; no optimiser state, about 1.3 MB).
cp "$RUN/best.pt" sst_ros/models/default.pt
# its ONNX export, the default where torch is not installed (test_onnx_runtime checks it matches)
sst export --onnx sst_ros/models/default.pt sst_ros/models/default.onnx
