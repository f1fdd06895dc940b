#!/usr/bin/env bash
# Runs capjax.main on every host of a Cloud TPU VM pod slice.
#
#   TPU_NAME=my-pod ZONE=us-central2-b launch/tpu_vm_pod.sh \
#     --config=configs/captioning/shapes.py --workdir=gs://bucket/runs/shapes
#
# Assumes the repo is checked out at ~/capjax on every host with `make install`
# done (e.g. through an earlier `--command`). JAX finds the pod's hosts by
# itself (CAPJAX_AUTO_DISTRIBUTED=1 makes capjax call
# jax.distributed.initialize()). Every host runs the same command; each reads
# its own slice of every batch.
set -euo pipefail
: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}"
args=$(printf ' %q' "$@")
gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=all \
  --command="cd ~/capjax && CAPJAX_AUTO_DISTRIBUTED=1 .venv/bin/python -m capjax.main$args"
