#!/usr/bin/env bash
# Flickr8k end to end: CNN weights -> capjax checkpoint -> features of every
# split -> a merge captioner trained on them -> test-split metrics.
#
#   bash launch/flickr8k_demo.sh                 # or: make flickr8k-demo
#   KERAS_H5=inception_v3_weights_tf_dim_ordering_tf_kernels.h5 \
#       DATA=PATH/TO/Flickr8k STEPS=3000 bash launch/flickr8k_demo.sh
#
# Without KERAS_H5 (nothing can be downloaded here) the Inception-v3 weights
# are Keras's random initialisation: the pipeline runs, but the features
# carry almost nothing about the photo, so expect the scores of a captioner
# that ignores the image (BLIND=1 also trains that baseline to compare).
# Every step resumes: run it again after a kill and it continues.
set -euo pipefail

PY=${PY:-python}
DATA=${DATA:-../shared/data/flickr8k_1k}  # the official Flickr8k layout
RUN=${RUN:-runs/flickr8k_demo}
STEPS=${STEPS:-1000}  # training steps of the captioner (batch 64)
KERAS_H5=${KERAS_H5:-}  # a user's Keras Inception-v3 weights (.h5)
DTYPE=${DTYPE:-float32}  # extraction compute: float32 | bfloat16
BLIND=${BLIND:-0}  # 1: also train the image-free baseline

if [[ -z "$KERAS_H5" ]]; then
  KERAS_H5=$RUN/inception_v3_random.weights.h5
  if [[ ! -f "$KERAS_H5" ]]; then
    echo "== random Keras Inception-v3 weights (no real ones given)"
    KERAS_BACKEND=jax "$PY" launch/write_random_keras_weights.py \
        --arch=inception_v3 --output="$KERAS_H5"
  fi
fi

echo "== convert $KERAS_H5"
"$PY" -m capjax.convert_weights --arch=inception_v3 --source=keras \
    --input="$KERAS_H5" --output="$RUN/weights/inception_v3"

echo "== features of every split of $DATA"
"$PY" -m capjax.extract_features \
    --config=configs/features/flickr8k_inception_v3.py --workdir="$RUN" \
    --config.dataset.manual_dir="$DATA" \
    --config.features.weights="$RUN/weights/inception_v3" \
    --config.features.dtype="$DTYPE"

train() {  # workdir, extra flags...
  local workdir=$1
  shift
  "$PY" -m capjax.main --config=configs/captioning/flickr8k_features.py \
      --workdir="$workdir" \
      --config.dataset.manual_dir="$DATA" \
      --config.dataset.features="$RUN/features" \
      --config.train.num_steps="$STEPS" "$@"
}

echo "== merge captioner on the features ($STEPS steps), test metrics"
train "$RUN/merge"
if [[ "$BLIND" == 1 ]]; then
  echo "== the same captioner with the image zeroed (baseline)"
  train "$RUN/merge_blind" --config.model.blind=True
fi
