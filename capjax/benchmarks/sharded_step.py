"""Data-parallel jit steps with and without the mesh: `sharded_step`.

  XLA_FLAGS=--xla_force_host_platform_device_count=8 \\
      python -m capjax.benchmark sharded_step --repeats=7 --warmup=2

Compiles the benchmark model's train step (`--decoder`, B64 T20 V5000 H512
E256 by default) and its beam search (`--beam`, 256 images) over a mesh of
every device, batch split, state replicated, two ways, and times them in
turns:

  gathered  traced without the mesh in context: what capjax compiled before
            `parallel.constrain_batch`/`device_rows`/`per_device` existed,
            when the partitioner gathered the batch onto every device for
            the recurrence and for beam search's top-k;
  split     traced under `jax.set_mesh` as `stepping.Stepper` and the
            evaluators trace it now.

Each record gives the median ms and the number of `all-gather`s in the
compiled program. On fake CPU devices sharing a few cores the figure is the
total work per step, not scaling.
"""

import contextlib
import functools

import jax
import jax.numpy as jnp

from capjax import parallel
from capjax.benchmarks import bench_model
from capjax.benchmarks import decode
from capjax.benchmarks import timing
from capjax.benchmarks import train_step

SIDES = ('gathered', 'split')
DEFAULT_DECODE_BATCH = 256


def _compile(fn, side, mesh, *args):
  context = (jax.set_mesh(mesh) if side == 'split'
             else contextlib.nullcontext())
  with context:
    compiled = fn.lower(*args).compile()
  return compiled, compiled.as_text().count('all-gather(')


def run(config: dict) -> list[dict]:
  """Four records: train_step and beam search, gathered and split."""
  size = train_step.model_size(config)
  mesh = parallel.make_mesh()
  replicated = parallel.replicated_sharding(mesh)
  sharded = parallel.data_sharding(mesh)
  setup = bench_model.train_setup(size)
  state = jax.device_put(setup.state, replicated)
  batch = jax.device_put(setup.batch, sharded)
  decode_size = train_step.model_size(
      config, default_batch=DEFAULT_DECODE_BATCH)
  model, params = bench_model.init_params(decode_size)
  params = jax.device_put(params, replicated)
  images = jax.device_put(
      jnp.asarray(bench_model.features(decode_size)), sharded)
  beam = config.get('beam') or 3
  contenders, records = {}, {}
  for side in SIDES:
    step = jax.jit(setup.step_fn, in_shardings=(replicated, sharded,
                                                replicated),
                   out_shardings=(replicated, replicated))
    compiled, gathers = _compile(step, side, mesh, state, batch, setup.rng)
    contenders[f'train_step/{side}'] = functools.partial(
        compiled, state, batch, setup.rng)
    records[f'train_step/{side}'] = dict(
        size.as_record(), what='train_step', all_gathers=gathers)
    beams = jax.jit(functools.partial(
        decode.decode_images, model, mode='beam', beam=beam,
        max_len=decode_size.max_len),
        in_shardings=(replicated, sharded), out_shardings=sharded)
    compiled, gathers = _compile(beams, side, mesh, params, images)
    contenders[f'beam/{side}'] = functools.partial(compiled, params, images)
    records[f'beam/{side}'] = dict(
        decode_size.as_record(), what='beam', beam=beam, all_gathers=gathers)
  timed = timing.time_alternating(contenders, config.get('repeats', 5),
                                  config.get('warmup', 1),
                                  between=config.get('between'))
  out = []
  for name, record in records.items():
    t, _ = timed[name]
    side = name.split('/')[1]
    record.update(benchmark='sharded_step', side=side, devices=mesh.size,
                  ms=1e3 * t.median_seconds, min_ms=1e3 * t.min_seconds,
                  repeats=t.repeats, warmup=t.warmup)
    out.append(record)
  for what in ('train_step', 'beam'):
    gathered, split = (records[f'{what}/{side}'] for side in SIDES)
    split['speedup'] = gathered['ms'] / split['ms']
  return out
