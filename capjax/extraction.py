"""CNN features of a folder of images: batched, sharded, resumable.

`extract_folder` runs an encoder checkpoint over every image of a folder and
writes one `.npz` with `names` [N], `global` [N, D], optionally `grid`
[N, L, D], and `skipped` (the unreadable files, counted, not fatal). The
images are cut into chunks; each finished chunk is saved atomically in
`OUTPUT.partial/`, so a killed run started again with the same settings
continues after the last saved chunk, and the result equals an
uninterrupted run. Every device of the host gets a slice of each batch.
"""

import concurrent.futures
import dataclasses
import hashlib
import io
import json
import os
import shutil
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from capjax import atomic_write
from capjax import parallel
from capjax import progress
from capjax.data import crops
from capjax.data import images as image_files
from capjax.models.encoders import checkpoint

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.webp', '.tif',
                    '.tiff')
MANIFEST = 'manifest.json'


@dataclasses.dataclass(frozen=True)
class Settings:
  """How images become features (all of it decides the result).

  Attributes:
    crop: 'squash', 'center' or 'ten' (see `capjax/data/crops.py`).
    size: input side; 0: the checkpoint's (224, or 299 for Inception-v3).
    short_side: shorter side before cropping; 0: 256 at 224 px.
    grid: also store the grid features.
    dtype: 'float32' or 'bfloat16' compute.
    store_dtype: 'float16' or 'float32' in the output.
    batch: images per step (rounded up to the number of devices).
    chunk: images per saved partial result.
  """

  crop: str = 'squash'
  size: int = 0
  short_side: int = 0
  grid: bool = False
  dtype: str = 'float32'
  store_dtype: str = 'float16'
  batch: int = 32
  chunk: int = 512


def list_images(folder: str) -> list[str]:
  """Sorted file names (relative to `folder`) with an image extension."""
  if not os.path.isdir(folder):
    raise ValueError(f'--images={folder} is not a directory.')
  names = []
  for root, _, files in os.walk(folder):
    for name in files:
      if name.lower().endswith(IMAGE_EXTENSIONS):
        names.append(os.path.relpath(os.path.join(root, name), folder))
  if not names:
    raise ValueError(f'No images ({", ".join(IMAGE_EXTENSIONS)}) in '
                     f'{folder}.')
  return sorted(names)


def make_features_fn(encoder, mesh, with_grid: bool):
  """jit(params, images [B, crops, s, s, 3]) -> crop-averaged features.

  Returns global [B, D] (and grid [B, L, D] when `with_grid`), float32, the
  batch sharded over `mesh`.
  """
  data = parallel.data_sharding(mesh)

  def features(params, batch):
    count, num_crops = batch.shape[:2]
    flat = batch.reshape(count * num_crops, *batch.shape[2:])
    pooled, grid = encoder.apply(params, flat)
    pooled = pooled.reshape(count, num_crops, -1).mean(axis=1)
    if not with_grid:
      return (pooled,)
    grid = grid.reshape(count, num_crops, *grid.shape[1:]).mean(axis=1)
    return pooled, grid

  return jax.jit(features, in_shardings=(parallel.replicated_sharding(mesh),
                                         data), out_shardings=data)


class Extractor:
  """Encoder + params on every device; `__call__` on numpy batches."""

  def __init__(self, weights: str, settings: Settings, mesh=None):
    self.encoder, params, self.info = checkpoint.load(weights, settings.dtype)
    self.settings = settings
    self.size = settings.size or self.info['image_size']
    self.short_side = settings.short_side or crops.default_short_side(
        self.size)
    crops.check(settings.crop, self.size, self.short_side)
    self.mesh = mesh or parallel.make_mesh()
    devices = self.mesh.devices.size
    self.batch = -(-settings.batch // devices) * devices
    self.params = parallel.replicate(params, self.mesh)
    self._fn = make_features_fn(self.encoder, self.mesh, settings.grid)

  def load(self, path: str) -> np.ndarray:
    """[crops, size, size, 3] uint8 of one file (raises BadImageError)."""
    return crops.load(path, self.settings.crop, self.size, self.short_side)

  def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
    """[n <= self.batch, crops, s, s, 3] uint8 -> (global [n, D], grid?)."""
    count = len(batch)
    if count < self.batch:  # the last batch: padded, then cut
      pad = np.zeros((self.batch - count, *batch.shape[1:]), batch.dtype)
      batch = np.concatenate([batch, pad])
    out = self._fn(self.params, jnp.asarray(batch))
    return tuple(np.asarray(x)[:count] for x in out)


def _manifest(weights, settings, extractor, names) -> dict:
  digest = hashlib.sha256('\n'.join(names).encode('utf-8')).hexdigest()
  return {
      'weights': os.path.abspath(weights),
      'arch': extractor.info['arch'],
      'settings': dataclasses.asdict(settings),
      'size': extractor.size,
      'short_side': extractor.short_side,
      'images': len(names),
      'names_sha256': digest,
  }


def _npz_bytes(arrays: dict) -> bytes:
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  return buffer.getvalue()


def _chunk_path(partial: str, index: int) -> str:
  return os.path.join(partial, f'chunk_{index:06d}.npz')


def _extract_chunk(extractor, folder, names, pool, store_dtype, on_batch):
  """Features of `names`; unreadable files are skipped and named."""
  kept, skipped, outputs = [], [], []

  def read(name):
    try:
      return name, extractor.load(os.path.join(folder, name)), None
    except image_files.BadImageError as e:
      return name, None, str(e)

  loaded = pool.map(read, names)
  batch_names, batch_images = [], []

  def flush():
    if batch_images:
      outputs.append(extractor(np.stack(batch_images)))
      kept.extend(batch_names)
      on_batch(len(batch_names))
      batch_names.clear()
      batch_images.clear()

  for name, image, error in loaded:
    if error is not None:
      skipped.append(name)
      print(f'\nskipped: {error}', file=sys.stderr)
      on_batch(1)
      continue
    batch_names.append(name)
    batch_images.append(image)
    if len(batch_images) == extractor.batch:
      flush()
  flush()
  arrays = {'names': np.asarray(kept, dtype=str),
            'skipped': np.asarray(skipped, dtype=str)}
  if outputs:
    arrays['global'] = stored(np.concatenate([o[0] for o in outputs]),
                               store_dtype)
    if extractor.settings.grid:
      arrays['grid'] = stored(np.concatenate([o[1] for o in outputs]),
                               store_dtype)
  return arrays


def stored(features: np.ndarray, store_dtype: str) -> np.ndarray:
  """Features in the stored dtype; an error rather than inf in float16."""
  largest = float(np.abs(features).max()) if features.size else 0.0
  if not np.isfinite(largest):
    raise ValueError('The encoder gave non-finite features: check the '
                     'weights (--weights).')
  if store_dtype == 'float16' and largest > np.finfo(np.float16).max:
    raise ValueError(f'Features reach {largest:.3g}, beyond float16; use '
                     '--store_dtype=float32 (features.store_dtype in a config; '
                     'untrained weights can do this).')
  return features.astype(store_dtype)


def extract_folder(folder: str, weights: str, output: str,
                   settings: Settings = Settings(), *, mesh=None,
                   throttle_s: float = 0.0) -> dict:
  """Extracts features of every image in `folder` into `output` (.npz).

  Args:
    folder: the images (searched recursively; names relative to it).
    weights: an encoder checkpoint directory (`capjax.convert_weights`).
    output: the `.npz` to write.
    settings: crops, sizes, dtypes, batch and chunk sizes.
    mesh: the device mesh (default: every device).
    throttle_s: seconds to wait after each saved chunk (tests use it to
      kill a run half-way).

  Returns:
    {'images', 'skipped', 'resumed_chunks', 'seconds', 'images_per_s'}.
  """
  if settings.store_dtype not in ('float16', 'float32'):
    raise ValueError("store_dtype must be 'float16' or 'float32'; got "
                     f'{settings.store_dtype!r}.')
  if jax.process_count() > 1:
    raise ValueError('extract_features runs on one host (every local '
                     'device); give each host its own part of the images.')
  names = list_images(folder)
  extractor = Extractor(weights, settings, mesh)
  partial = output + '.partial'
  manifest = _manifest(weights, settings, extractor, names)
  manifest_path = os.path.join(partial, MANIFEST)
  if os.path.exists(manifest_path):
    with open(manifest_path, encoding='utf-8') as f:
      if json.load(f) != manifest:
        raise ValueError(
            f'{partial} holds a run with other settings, weights or images; '
            'use the same ones to continue it, or delete it to start over.')
  else:
    atomic_write.write_json(manifest_path, manifest, indent=1)
  starts = list(range(0, len(names), settings.chunk))
  done = [i for i in range(len(starts))
          if os.path.exists(_chunk_path(partial, i))]
  already = sum(len(names[starts[i]:starts[i] + settings.chunk])
                for i in done)
  bar = progress.Progress(len(names), already)
  begin = time.perf_counter()
  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    for index, start in enumerate(starts):
      if index in done:
        continue
      arrays = _extract_chunk(extractor, folder,
                              names[start:start + settings.chunk], pool,
                              settings.store_dtype, bar.update)
      atomic_write.write_bytes(_chunk_path(partial, index), _npz_bytes(arrays))
      if throttle_s:
        time.sleep(throttle_s)
  bar.close()
  seconds = time.perf_counter() - begin
  chunks = []
  for index in range(len(starts)):
    with np.load(_chunk_path(partial, index)) as f:
      chunks.append({k: f[k] for k in f.files})
  result = {'names': np.concatenate([c['names'] for c in chunks]),
            'skipped': np.concatenate([c['skipped'] for c in chunks])}
  for key in ('global', 'grid'):
    parts = [c[key] for c in chunks if key in c]
    if parts:
      result[key] = np.concatenate(parts)
  atomic_write.write_bytes(output, _npz_bytes(result))
  shutil.rmtree(partial)
  return {'images': int(len(result['names'])),
          'skipped': int(len(result['skipped'])),
          'resumed_chunks': len(done), 'seconds': seconds,
          'images_per_s': (len(names) - already) / seconds if seconds else 0.0}
