#!/usr/bin/env bash
# Runs capjax.main as N processes on this machine (a stand-in for N hosts).
#
#   launch/local_multiprocess.sh 2 --config=configs/captioning/shapes.py:tiny --workdir=runs/mp
#
# Each process gets DEVICES_PER_PROCESS fake CPU devices (default 1) and talks
# to the others through a coordinator on 127.0.0.1:$PORT (default 12355).
# Output of process i goes to $LOGDIR/process_i.log (default: the workdir's
# parent, or /tmp). The script waits for all and fails if any fails.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 NUM_PROCESSES capjax.main flags..." >&2
  exit 2
fi
num_processes=$1
shift
port=${PORT:-12355}
devices=${DEVICES_PER_PROCESS:-1}
logdir=${LOGDIR:-/tmp}
python=${PYTHON:-python}
mkdir -p "$logdir"
pids=()
for ((i = 0; i < num_processes; i++)); do
  XLA_FLAGS="--xla_force_host_platform_device_count=$devices" JAX_PLATFORMS=cpu \
    "$python" -m capjax.main "$@" \
    --coordinator_address="127.0.0.1:$port" \
    --num_processes="$num_processes" --process_id="$i" \
    >"$logdir/process_$i.log" 2>&1 &
  pids+=($!)
done
status=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "process $i failed; see $logdir/process_$i.log" >&2
    status=1
  fi
done
exit $status
