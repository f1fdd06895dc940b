"""Compile times against max_len: `capjax.benchmark compile`.

For each max_len (default 16, 32, 64) it builds the benchmark model's train
step and its beam search afresh (a new `jax.jit` each time, so nothing is
reused) and times tracing + lowering and XLA compilation apart; each figure
is the median of `repeats`. A decoder whose time loop is a `scan` or
`while_loop` compiles one step body whatever max_len is, so the times should
not grow with it; `compile_s_vs_first` is each compile time over that of the
first max_len.
"""

import statistics

import jax

from capjax.benchmarks import bench_model
from capjax.benchmarks import decode
from capjax.benchmarks import train_step

DEFAULT_MAX_LENS = (16, 32, 64)


def _median_times(compile_once, repeats: int) -> tuple[float, float]:
  traces, compiles = [], []
  for _ in range(repeats):
    _, trace_s, compile_s = compile_once()
    traces.append(trace_s)
    compiles.append(compile_s)
  return statistics.median(traces), statistics.median(compiles)


def run(config: dict) -> list[dict]:
  """Compile times of the train step and of beam search per max_len."""
  max_lens = config.get('max_lens') or DEFAULT_MAX_LENS
  repeats = config['repeats']
  beam = config.get('beam', 3)
  records = []
  sizes = {}
  for max_len in max_lens:
    sizes[max_len] = train_step.model_size(config, max_len=max_len)
  # Untimed: the process's first compilation pays one-time start-up costs.
  first = sizes[max_lens[0]]
  train_step.compile_step(bench_model.train_setup(first))
  for max_len in max_lens:
    setup = bench_model.train_setup(sizes[max_len])
    trace_s, compile_s = _median_times(
        lambda s=setup: train_step.compile_step(s), repeats)
    records.append(dict(
        benchmark='compile', function='train_step', impl='capjax', beam=0,
        **sizes[max_len].as_record(), trace_s=trace_s, compile_s=compile_s,
        repeats=repeats))
  for max_len in max_lens:
    size = train_step.model_size(config, max_len=max_len,
                                 batch=config.get('batch') or
                                 decode.DEFAULT_BATCH)
    model, params = bench_model.init_params(size)
    images = jax.device_put(bench_model.features(size))
    settings = dict(mode='beam', beam=beam, max_len=max_len)
    trace_s, compile_s = _median_times(
        lambda: decode.compile_decode(model, params, images, **settings),
        repeats)
    records.append(dict(
        benchmark='compile', function='beam_search', impl='capjax', beam=beam,
        **size.as_record(), trace_s=trace_s, compile_s=compile_s,
        repeats=repeats))
  for function in ('train_step', 'beam_search'):
    rows = [r for r in records if r['function'] == function]
    for row in rows:
      row['compile_s_vs_first'] = row['compile_s'] / rows[0]['compile_s']
  return records
