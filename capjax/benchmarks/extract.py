"""CNN feature extraction speed: `capjax.benchmark extract`.

Times the jitted encoder (`apply(params, images)` of VGG, ResNet or
Inception-v3 with random float32 weights) on a batch of random uint8 images
at the network's input size, for each architecture and dtype asked; the
configurations are compiled first, then timed in turns (one call of each per
round) so that their ratio is measured under the same machine load. Reports
images/s, compile seconds, and the conv/matmul FLOPs per image counted from
the jaxpr with the achieved GFLOP/s (share of the float32 matmul rate).
"""

import statistics
import time

import jax
import numpy as np

from capjax import converters
from capjax.benchmarks import flops
from capjax.models import encoders

DEFAULT_BATCH = 8
ARCHS = ('vgg16', 'vgg19', 'resnet50', 'resnet101', 'inception_v3',
         'alexnet')
DTYPES = ('float32', 'bfloat16')


def check(config: dict) -> None:
  """ValueError naming a bad --arch or --dtype."""
  for arch in config.get('archs') or ('vgg16',):
    if arch not in ARCHS:
      raise ValueError(f'--arch: unknown {arch!r}; choose from {ARCHS}.')
  for dtype in config.get('dtypes') or ('float32',):
    if dtype not in DTYPES:
      raise ValueError(f'--dtype: unknown {dtype!r}; choose from {DTYPES}.')


def random_params(encoder, images, seed: int = 0):
  """He-scaled random float32 params (numpy; faster than `init` on CPUs)."""
  shapes = jax.eval_shape(encoder.init, jax.random.key(0), images)
  rng = np.random.default_rng(seed)

  def draw(leaf):
    if len(leaf.shape) >= 2:
      fan_in = int(np.prod(leaf.shape[:-1]))
      return rng.standard_normal(leaf.shape, np.float32) * np.sqrt(2 / fan_in)
    return rng.uniform(0.5, 1.0, leaf.shape).astype(np.float32)

  return jax.tree.map(draw, shapes)


def run(config: dict) -> list[dict]:
  """One record per (arch, dtype)."""
  check(config)
  archs = config.get('archs') or ('vgg16',)
  dtypes = config.get('dtypes') or ('float32',)
  batch = config.get('batch') or DEFAULT_BATCH
  rng = np.random.default_rng(0)
  cases = []
  for arch in archs:
    size = config.get('image_size') or converters.IMAGE_SIZE[arch]
    images = rng.integers(0, 256, (batch, size, size, 3)).astype(np.uint8)
    params = None
    for dtype in dtypes:
      encoder = encoders.ENCODERS[arch](dtype=dtype)
      if params is None:
        params = jax.device_put(random_params(encoder, images))
      fn = jax.jit(encoder.apply)
      start = time.perf_counter()
      compiled = fn.lower(params, images).compile()
      compile_s = time.perf_counter() - start
      gflop = flops.matmul_flops(encoder.apply, params, images) / 1e9
      cases.append(dict(arch=arch, dtype=dtype, size=size, fn=compiled,
                        params=params, images=jax.device_put(images),
                        compile_s=compile_s, gflop=gflop, times=[]))
  for case in cases:  # warm-up
    for _ in range(config.get('warmup', 1)):
      jax.block_until_ready(case['fn'](case['params'], case['images']))
  for _ in range(config.get('repeats', 5)):
    for case in cases:  # in turns: the ratios share the machine's state
      start = time.perf_counter()
      jax.block_until_ready(case['fn'](case['params'], case['images']))
      case['times'].append(time.perf_counter() - start)
    if config.get('between'):
      config['between']()
  records = []
  for case in cases:
    seconds = statistics.median(case['times'])
    records.append(dict(
        benchmark='extract', arch=case['arch'], dtype=case['dtype'],
        batch=batch, image_size=case['size'],
        images_per_s=batch / seconds, batch_ms=1e3 * seconds,
        min_batch_ms=1e3 * min(case['times']),
        max_batch_ms=1e3 * max(case['times']), compile_s=case['compile_s'],
        gflop_per_image=case['gflop'] / batch,
        achieved_gflop_per_s=case['gflop'] / seconds,
        repeats=len(case['times']),
    ))
  return records
