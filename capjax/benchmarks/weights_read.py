"""Start-up cost of converted weights: `benchmark weights_read`.

Writes random He-scaled weights of `--arch` (default VGG-16, 138 M params
at 224 px) as a capjax encoder checkpoint in a temporary directory, then
times, one of each per round, what a fine-tuned run does with them before
its first step:

  read_twice       the run meta's `describe` building the whole tree to
                   check it, then `load_params` reading and hashing it again
                   (what capjax did before: `_read_params` twice);
  check_then_read  `describe` walking the msgpack headers while hashing
                   (`msgpack_walk`: no array built), then `load_params`
                   building the tree once and reusing that hash.

Reports the median seconds of each (after a warm-up that leaves the file in
the page cache, so disk speed is not measured) and the file's size; the
check_then_read record carries `speedup`.
"""

import os
import tempfile

import numpy as np

from capjax import converters
from capjax.benchmarks import extract
from capjax.benchmarks import timing
from capjax.models import encoders
from capjax.models.encoders import checkpoint

SIDES = ('read_twice', 'check_then_read')


def check(config: dict) -> None:
  """ValueError naming a bad --arch (one ImageNet CNN)."""
  archs = config.get('archs') or ('vgg16',)
  if len(archs) != 1 or archs[0] not in extract.ARCHS:
    raise ValueError(f'--arch: one of {extract.ARCHS}; got {archs}.')


def _read_twice(directory: str):
  """The two full reads of a start-up before: describe, then load_params."""
  read = checkpoint._read_params  # pylint: disable=protected-access
  checkpoint.read_info(directory)
  _, sha256 = read(directory)
  checkpoint.read_info(directory)
  params, again = read(directory)  # no sha256 given: hashed again
  assert again == sha256
  return params


def _check_then_read(directory: str):
  sha256 = checkpoint.describe(directory)['sha256']
  return checkpoint.load_params(directory, sha256)


def run(config: dict) -> list[dict]:
  """Two records, read_twice and check_then_read, timed in turns."""
  check(config)
  arch = (config.get('archs') or ('vgg16',))[0]
  size = config.get('image_size') or converters.IMAGE_SIZE[arch]
  with tempfile.TemporaryDirectory() as directory:
    encoder = encoders.ENCODERS[arch]()
    images = np.zeros((1, size, size, 3), np.uint8)
    params = extract.random_params(encoder, images)
    fields = {k: v for k, v in vars(encoder).items() if k != 'dtype'}
    checkpoint.save(directory, arch, fields, params, source='random',
                    image_size=size)
    del params
    path = os.path.join(directory, checkpoint.PARAMS_NAME)
    megabytes = os.path.getsize(path) / 1e6
    fns = {'read_twice': lambda: _read_twice(directory),
           'check_then_read': lambda: _check_then_read(directory)}
    timed = timing.time_alternating(fns, config.get('repeats', 5),
                                    max(config.get('warmup', 1), 1))
  records = []
  for side in SIDES:
    t, _ = timed[side]
    records.append(dict(
        benchmark='weights_read', arch=arch, side=side, image_size=size,
        file_mb=megabytes, seconds=t.median_seconds,
        min_seconds=t.min_seconds, max_seconds=t.max_seconds,
        mb_per_s=megabytes / t.median_seconds, repeats=t.repeats,
        warmup=t.warmup))
  records[1]['speedup'] = records[0]['seconds'] / records[1]['seconds']
  return records
