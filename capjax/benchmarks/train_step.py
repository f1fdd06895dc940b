"""Train-step speed of the benchmark model: `capjax.benchmark train_step`.

Times `train.train_step` (jitted, state donated, as the train loop runs it)
on the benchmark model of `bench_model` with one device-resident batch:
step ms (median of repeats after warm-up), tokens/s and captions/s, trace
and compile seconds (apart), and the matmul FLOPs of one step (forward and
backward, counted from its jaxpr by `flops.matmul_flops`) with the achieved
GFLOP/s. When `torch` imports, the same model in PyTorch is timed beside it
(`torch_reference`). With `--dtype=float32,bfloat16` both precisions are
timed, capjax's `model.dtype` against PyTorch's float32 and its bfloat16
autocast, one step of each in turn. The FLOP count is the float32 padded
step's: a padding-free (`--output_capacity`) or bfloat16 step is credited
with the same work, so its GFLOP/s reads as useful work per second.
"""

import dataclasses
import functools
import time

import jax

from capjax.benchmarks import bench_model
from capjax.benchmarks import dtypes
from capjax.benchmarks import flops
from capjax.benchmarks import timing
from capjax.benchmarks import torch_reference


def model_size(config: dict, default_batch: int = 64,
               **overrides) -> bench_model.ModelSize:
  """The ModelSize of the dispatcher's flags (`config`), with overrides.

  A flag missing from `config` (or None) takes the benchmark model's default.
  """
  defaults = bench_model.ModelSize(batch=default_batch)
  fields = {}
  for name in ('decoder', 'batch', 'max_len', 'vocab', 'hidden', 'embed',
               'grid_cells', 'output_capacity'):
    value = config.get(name)
    fields[name] = getattr(defaults, name) if value is None else value
  capacities = output_capacities(config)
  fields['output_capacity'] = capacities[0]
  fields.update(overrides)
  size = bench_model.ModelSize(**fields)
  size.validate()
  return size


def output_capacities(config: dict) -> tuple[float, ...]:
  """The `--output_capacity` values (a number or a list; default 0)."""
  value = config.get('output_capacity')
  if value is None:
    return (0.0,)
  values = (value,) if isinstance(value, (int, float)) else tuple(value)
  return tuple(dict.fromkeys(float(v) for v in values)) or (0.0,)


def compile_step(setup: bench_model.TrainSetup):
  """Lowers and compiles the jitted step: (compiled, trace_s, compile_s).

  A fresh `jax.jit` wrapper is built on every call, so nothing is reused from
  an earlier compilation in this process.
  """
  step = jax.jit(lambda *a: setup.step_fn(*a), donate_argnums=(0,))
  start = time.perf_counter()
  lowered = step.lower(setup.state, setup.batch, setup.rng)
  traced = time.perf_counter()
  compiled = lowered.compile()
  done = time.perf_counter()
  return compiled, traced - start, done - traced


def step_flops(setup: bench_model.TrainSetup) -> int:
  """Matmul FLOPs of one train step, forward and backward."""
  return flops.matmul_flops(setup.step_fn, setup.state, setup.batch, setup.rng)


def run(config: dict) -> list[dict]:
  """Times the train step per `--dtype`, capjax and PyTorch, in turns.

  Every contender (capjax at each dtype and output capacity and, when torch
  imports, PyTorch at each dtype) takes one step per round, so the ratios
  between them compare the same stretch of a noisy machine. One record per
  contender.
  """
  contenders, finish = {}, {}
  gflop = None
  for dtype in dtypes.from_config(config):
    for capacity in output_capacities(config):
      size = model_size(config, dtype=dtype, output_capacity=capacity)
      setup = bench_model.train_setup(size)
      compiled, trace_s, compile_s = compile_step(setup)
      if gflop is None:  # the float32 padded step's work, for every contender
        plain = dataclasses.replace(size, dtype='float32',
                                    output_capacity=0.0)
        gflop = step_flops(
            setup if plain == size else bench_model.train_setup(plain)) / 1e9
      name = ('capjax', dtype, capacity)
      contenders[name] = _stepper(compiled, setup)
      finish[name] = functools.partial(
          _record, size, setup, trace_s=trace_s, compile_s=compile_s,
          gflop=gflop)
    if config.get('torch', True):
      size = model_size(config, dtype=dtype, output_capacity=0.0)
      step = torch_reference.train_step_fn(size, dtype)
      if step is not None:  # PyTorch computes every position's logits
        contenders[('pytorch', dtype)] = step
        finish[('pytorch', dtype)] = functools.partial(
            torch_reference.record, size, dtype, gflop_per_step=gflop)
  timed = timing.time_alternating(contenders, config['repeats'],
                                  config['warmup'],
                                  between=config.get('between'))
  return [finish[name](t, result) for name, (t, result) in timed.items()]


def _stepper(compiled, setup: bench_model.TrainSetup):
  """One donated train step per call, threading the state; -> metrics."""
  state = setup.state

  def one_step():
    nonlocal state
    state, metrics = compiled(state, setup.batch, setup.rng)
    return metrics

  return one_step


def _record(size, setup, t: timing.Timing, metrics, *, trace_s, compile_s,
            gflop) -> dict:
  """The capjax train-step record."""
  step_s = t.median_seconds
  real_tokens = int((setup.batch['tokens'][:, 1:] != 0).sum())
  return dict(
      benchmark='train_step', impl='capjax', **size.as_record(),
      step_ms=1e3 * step_s, min_step_ms=1e3 * t.min_seconds,
      max_step_ms=1e3 * t.max_seconds,
      tokens_per_s=size.batch * size.max_len / step_s,
      real_tokens_per_s=real_tokens / step_s,
      captions_per_s=size.batch / step_s,
      trace_s=trace_s, compile_s=compile_s,
      gflop_per_step=gflop, achieved_gflop_per_s=gflop / step_s,
      loss=float(metrics['loss']),
      repeats=t.repeats, warmup=t.warmup,
  )
