"""Decoding speed of the benchmark model: `capjax.benchmark decode`.

Decodes a batch of image features the way evaluation does: one jitted
function of (params, images) that builds `model.decoder_fns` (image context
computed once) and runs `decoding.decode` with the greedy or beam method,
here with `early_stop=False` so every caption takes `max_len` steps (random
parameters would otherwise make the figure depend on when EOS wins). Reports
captions/s and tokens/s (max_len tokens per caption), trace and compile
seconds, and the matmul FLOPs of one call (the while loop counted max_len
times) with the achieved GFLOP/s. `--dtype=float32,bfloat16` times the step
functions in both precisions, in turns (beam scores stay float32).
"""

import functools
import time

import jax

from capjax import decoding
from capjax.benchmarks import bench_model
from capjax.benchmarks import dtypes
from capjax.benchmarks import flops
from capjax.benchmarks import timing
from capjax.benchmarks import train_step

DEFAULT_BATCH = 256
MODES = ('greedy', 'beam')


def decode_images(model, params, images, *, mode: str, beam: int,
                  max_len: int) -> jax.Array:
  """[batch, ...] features -> [batch, N, max_len] int32 token ids.

  Args:
    model: the captioner.
    params: its parameters.
    images: [batch, ...] image features.
    mode: 'greedy' or 'beam'.
    beam: the beam size (beam mode).
    max_len: tokens per caption; no early finish.

  Returns:
    The decoded sequences (N = 1 for greedy, beam for beam search).
  """
  step_fn, init_carry = model.decoder_fns(params, images)
  settings = dict(max_len=max_len, early_stop=False)
  if mode == 'beam':
    settings['beam_size'] = beam
  sequences, _ = decoding.decode(step_fn, init_carry, method=mode, **settings)
  return sequences


def compile_decode(model, params, images, **settings):
  """Lowers and compiles a fresh jitted decode.

  Returns:
    `(compiled, trace_s, compile_s)`.
  """
  fn = jax.jit(functools.partial(decode_images, model, **settings))
  start = time.perf_counter()
  lowered = fn.lower(params, images)
  traced = time.perf_counter()
  compiled = lowered.compile()
  return compiled, traced - start, time.perf_counter() - traced


def decode_flops(model, params, images, **settings) -> int:
  """Matmul FLOPs of one decode call (max_len steps)."""
  return flops.matmul_flops(
      functools.partial(decode_images, model, **settings), params, images,
      while_trips=settings['max_len'])


def check_modes(modes) -> tuple[str, ...]:
  """The decode modes to time (all by default); ValueError for unknown ones."""
  modes = tuple(modes or MODES)
  unknown = sorted(set(modes) - set(MODES))
  if unknown:
    raise ValueError(f'--modes: unknown {unknown}; choose from {MODES}.')
  return modes


def run(config: dict) -> list[dict]:
  """Times greedy and/or beam decoding; one record per mode and dtype.

  With several `--dtype`s, the decodes of one mode are timed in turns (one
  call of each per round), so their ratio compares like with like. The
  parameters are the same float32 ones for every dtype.
  """
  modes = check_modes(config.get('modes'))
  names = dtypes.from_config(config)
  sizes = {dtype: train_step.model_size(config, default_batch=DEFAULT_BATCH,
                                        dtype=dtype) for dtype in names}
  models = {}
  for dtype, size in sizes.items():
    models[dtype], params = bench_model.init_params(size)
  images = jax.device_put(bench_model.features(sizes[names[0]]))
  records = []
  for mode in modes:
    beam = config.get('beam', 3) if mode == 'beam' else 1
    settings = dict(mode=mode, beam=beam, max_len=sizes[names[0]].max_len)
    fns, compiled_s = {}, {}
    for dtype in names:
      compiled, trace_s, compile_s = compile_decode(
          models[dtype], params, images, **settings)
      fns[dtype] = functools.partial(compiled, params, images)
      compiled_s[dtype] = (trace_s, compile_s)
    gflop = decode_flops(models[names[0]], params, images, **settings) / 1e9
    timed = timing.time_alternating(fns, config['repeats'], config['warmup'],
                                    between=config.get('between'))
    for dtype, (t, _) in timed.items():
      size = sizes[dtype]
      seconds = t.median_seconds
      trace_s, compile_s = compiled_s[dtype]
      records.append(dict(
          benchmark='decode', impl='capjax', mode=mode, beam=beam,
          **size.as_record(),
          batch_ms=1e3 * seconds, min_batch_ms=1e3 * t.min_seconds,
          max_batch_ms=1e3 * t.max_seconds,
          captions_per_s=size.batch / seconds,
          tokens_per_s=size.batch * size.max_len / seconds,
          trace_s=trace_s, compile_s=compile_s,
          gflop_per_batch=gflop, achieved_gflop_per_s=gflop / seconds,
          repeats=t.repeats, warmup=t.warmup,
      ))
  return records
