#!/usr/bin/env bash
# Copyright (c) p2seg_mm contributors. All rights reserved.
# Multi-GPU / multi-node testing with torchrun.
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options]
# Environment: NNODES (1), NODE_RANK (0), PORT (29500),
# MASTER_ADDR (127.0.0.1); TORCHRUN (torchrun) picks the launcher binary.

CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
TORCHRUN=${TORCHRUN:-torchrun}

if [ -z "$CONFIG" ] || [ -z "$CHECKPOINT" ] || [ -z "$GPUS" ]; then
    echo "usage: bash $0 CONFIG CHECKPOINT GPUS [test.py options]" >&2
    exit 2
fi

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
$TORCHRUN \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --master_port=$PORT \
    --nproc_per_node=$GPUS \
    "$(dirname "$0")/test.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch "${@:4}"
