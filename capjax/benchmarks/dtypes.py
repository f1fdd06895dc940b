"""`--dtype` for the benchmarks, and the matmul rate of each precision.

`python -m capjax.benchmark dtypes` times the same matmuls in float32,
bfloat16 inputs with float32 accumulation (what `model.dtype='bfloat16'`
runs) and bfloat16 inputs and output, in turns: what mixed precision can gain
on this machine. Other benchmarks read their `--dtype` list with
`from_config` and set it on an experiment config with `set_dtype`.
"""

import functools

import jax
import jax.numpy as jnp
import ml_collections

from capjax.benchmarks import timing
from capjax.models import precision

DTYPES = tuple(precision.DTYPES)
# [rows, in] x [in, out]: the benchmark model's output layer, and a square.
SHAPES = ((1280, 512, 5000), (2048, 2048, 2048))
# name -> (input dtype, preferred_element_type)
KINDS = {
    'float32': (jnp.float32, jnp.float32),
    'bfloat16_f32_accumulation': (jnp.bfloat16, jnp.float32),
    'bfloat16_output': (jnp.bfloat16, jnp.bfloat16),
}


def from_config(config: dict) -> tuple[str, ...]:
  """The `--dtype` list of a benchmark's flags (default: float32 only)."""
  value = config.get('dtype') or ('float32',)
  names = (value,) if isinstance(value, str) else tuple(value)
  unknown = sorted(set(names) - set(DTYPES))
  if unknown or not names:
    raise ValueError(f'--dtype: unknown {unknown}; choose from {DTYPES}.')
  return tuple(dict.fromkeys(names))


def set_dtype(
    config: ml_collections.ConfigDict, name: str
) -> ml_collections.ConfigDict:
  """Sets the matmul compute dtype (`model.dtype`) of an experiment config."""
  precision.compute_dtype(name)
  config.model.dtype = name
  return config


def run(config: dict) -> list[dict]:
  """Times each matmul kind on each shape, in turns; one record each."""
  records = []
  for rows, inner, cols in SHAPES:
    keys = jax.random.split(jax.random.key(0))
    a = jax.random.normal(keys[0], (rows, inner), jnp.float32)
    b = jax.random.normal(keys[1], (inner, cols), jnp.float32)
    fns = {}
    for name, (dtype, out) in KINDS.items():
      fn = jax.jit(functools.partial(
          jnp.matmul, preferred_element_type=out))
      x, y = a.astype(dtype), b.astype(dtype)
      fns[name] = functools.partial(fn, x, y)
    timed = timing.time_alternating(fns, config['repeats'], config['warmup'],
                                    between=config.get('between'))
    gflop = 2 * rows * inner * cols / 1e9
    for name, (t, _) in timed.items():
      records.append(dict(
          benchmark='dtypes', kind=name, shape=f'{rows}x{inner}x{cols}',
          ms=1e3 * t.median_seconds, achieved_gflop_per_s=gflop
          / t.median_seconds, repeats=t.repeats, warmup=t.warmup))
  return records
