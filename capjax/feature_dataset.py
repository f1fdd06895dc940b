"""CNN features of every split of a registered caption dataset, by image id.

`extract_dataset(config, workdir)` runs the encoder checkpoint of
`config.features.weights` over every image of every split of
`config.dataset` and writes `workdir/features/` (the layout is described in
`capjax/data/feature_source.py`, which reads it): per split `image_ids.npy`
[N] int64, `global.npy` [N, D] and with `features.grid` `grid.npy`
[N, L, D], in `features.store_dtype`, plus `info.json`. `.npy` files are
memory-mapped by the reader, so random access needs no loading (COCO grids
are tens of GB).

A split is written into `SPLIT.partial/`: rows go straight into
memory-mapped `.npy` files and after every chunk of `features.chunk` images
the rows done are recorded (atomically, after the rows are flushed). A
killed run started again with the same config continues after the last
recorded chunk and its result equals an uninterrupted run's. A finished
split's folder is renamed into place and then named in `info.json`.
"""

import concurrent.futures
import dataclasses
import hashlib
import io
import json
import os
import shutil
import time

import jax
import ml_collections
import numpy as np

from capjax import atomic_write
from capjax import extraction
from capjax import progress
from capjax.data import crops
from capjax.data import feature_source
from capjax.data import pipeline
from capjax.data import sources
from capjax.models.encoders import checkpoint

FEATURES_DIR = 'features'
PROGRESS = 'progress.json'
MANIFEST = 'manifest.json'


def settings_of(config: ml_collections.ConfigDict) -> extraction.Settings:
  """The extraction settings of `config.features`."""
  f = config.features
  return extraction.Settings(
      crop=f.crop, size=f.size, short_side=f.short_side, grid=f.grid,
      dtype=f.dtype, store_dtype=f.store_dtype, batch=f.batch, chunk=f.chunk)


def fingerprint(weights: str) -> str:
  """sha256 (first 16 hex digits) of an encoder checkpoint's files."""
  digest = hashlib.sha256()
  for name in (checkpoint.JSON_NAME, checkpoint.PARAMS_NAME):
    with open(os.path.join(weights, name), 'rb') as f:
      for block in iter(lambda: f.read(1 << 22), b''):
        digest.update(block)
  return digest.hexdigest()[:16]


def check(config: ml_collections.ConfigDict) -> None:
  """One-line errors for an extraction config that cannot run."""
  f = config.features
  if not f.weights:
    raise ValueError('config.features.weights is empty: give an encoder '
                     'checkpoint directory (python -m capjax.convert_weights '
                     '... --output=DIR).')
  checkpoint.read_info(f.weights)
  if config.dataset.get('features'):
    raise ValueError('config.dataset.features is set: extraction reads the '
                     "pixels; set it to '' in the extraction config.")
  for key, known in (('crop', crops.MODES),
                     ('dtype', ('float32', 'bfloat16')),
                     ('store_dtype', ('float16', 'float32'))):
    if f[key] not in known:
      raise ValueError(f'config.features.{key}={f[key]!r} is unknown: choose '
                       f'one of {list(known)}.')
  for key in ('batch', 'chunk'):
    if f[key] < 1:
      raise ValueError(f'config.features.{key}={f[key]} must be at least 1.')


def _splits(config: ml_collections.ConfigDict) -> list[str]:
  d = config.dataset
  builder = sources.prepare(d.name, data_dir=d.data_dir or None,
                            manual_dir=d.manual_dir or None,
                            builder_config=d.builder_config or None)
  available = sorted(builder.info.splits)
  wanted = list(config.features.splits) or available
  unknown = [s for s in wanted if s not in available]
  if unknown:
    raise ValueError(f'config.features.splits names {unknown}: dataset '
                     f'{d.name!r} has {available}.')
  return wanted


def _info(config, extractor, weights_fingerprint, command) -> dict:
  d = config.dataset
  return {
      'format': feature_source.FORMAT,
      'version': feature_source.VERSION,
      'arch': extractor.info['arch'],
      'source': extractor.info.get('source', ''),
      'weights': os.path.abspath(config.features.weights),
      'fingerprint': weights_fingerprint,
      'image_size': extractor.size,
      'crop': extractor.settings.crop,
      'short_side': extractor.short_side,
      'dtype': extractor.settings.dtype,
      'store_dtype': extractor.settings.store_dtype,
      'grid': extractor.settings.grid,
      'dataset': {'name': d.name, 'builder_config': d.builder_config},
      'command': command,
      'splits': {},
  }


def _same_features(info: dict, saved: dict) -> bool:
  ignore = ('splits', 'command', 'weights')
  return ({k: v for k, v in info.items() if k not in ignore}
          == {k: v for k, v in saved.items() if k not in ignore})


def _rows_done(folder: str, split: str) -> int:
  """Rows of `split` a killed run left recorded (0: none)."""
  path = os.path.join(folder, f'{split}.partial', PROGRESS)
  if not os.path.exists(path):
    return 0
  with open(path, encoding='utf-8') as f:
    return int(json.load(f)['rows'])


def _open_arrays(partial, count, shapes, store_dtype, resume):
  """The split's memory-mapped outputs, new or (resuming) as left."""
  arrays = {}
  for key, shape in shapes.items():
    path = os.path.join(partial, f'{key}.npy')
    if resume:
      arrays[key] = np.load(path, mmap_mode='r+')
    else:
      arrays[key] = np.lib.format.open_memmap(
          path, mode='w+', dtype=store_dtype, shape=(count, *shape))
  return arrays


def _feature_shapes(extractor) -> dict:
  """{'global': (D,), 'grid': (L, D)?} from one blank batch."""
  blank = np.zeros((1, crops.CROPS[extractor.settings.crop], extractor.size,
                    extractor.size, 3), np.uint8)
  out = extractor(blank)
  shapes = {'global': out[0].shape[1:]}
  if extractor.settings.grid:
    shapes['grid'] = out[1].shape[1:]
  return shapes


def _extract_split(source, extractor, folder, manifest, bar, pool,
                   throttle_s) -> dict:
  """Writes `folder/SPLIT/`; returns its shapes for info.json."""
  split, settings = source.split, extractor.settings
  partial = os.path.join(folder, f'{split}.partial')
  ids = np.asarray(source.image_ids, np.int64)
  if len(set(ids.tolist())) != len(ids):
    raise ValueError(f'{source.name} {split}: image ids are not unique.')
  manifest = dict(manifest, split=split, images=len(ids),
                  ids_sha256=hashlib.sha256(ids.tobytes()).hexdigest())
  manifest_path = os.path.join(partial, MANIFEST)
  progress_path = os.path.join(partial, PROGRESS)
  done = 0
  if os.path.exists(progress_path):
    with open(manifest_path, encoding='utf-8') as f:
      if json.load(f) != manifest:
        raise ValueError(
            f'{partial} holds a run with other weights, settings or images; '
            'use the same config to continue it, or delete it to start '
            'over.')
    with open(progress_path, encoding='utf-8') as f:
      done = json.load(f)['rows']
  elif os.path.exists(partial):
    shutil.rmtree(partial)  # killed before its first mark: nothing to keep
  shapes = _feature_shapes(extractor)
  if not done:
    os.makedirs(partial, exist_ok=True)
    atomic_write.write_json(manifest_path, manifest, indent=1)
  arrays = _open_arrays(partial, len(ids), shapes, settings.store_dtype,
                        resume=bool(done))
  label = f'{source.name} {split} image id'

  def read(index):
    data = source.records[index]['image']
    return crops.load_bytes(data, f'{label} {ids[index]}', settings.crop,
                            extractor.size, extractor.short_side)

  for start in range(done, len(ids), settings.chunk):
    stop = min(start + settings.chunk, len(ids))
    images = pool.map(read, range(start, stop))
    row, batch = start, []
    for image in images:
      batch.append(image)
      if len(batch) == extractor.batch or row + len(batch) == stop:
        outputs = extractor(np.stack(batch))
        for key, values in zip(('global', 'grid'), outputs):
          arrays[key][row:row + len(batch)] = extraction.stored(
              values, settings.store_dtype)
        row += len(batch)
        bar.update(len(batch))
        batch = []
    for array in arrays.values():
      array.flush()
    atomic_write.write_json(progress_path, {'rows': stop})
    if throttle_s:
      time.sleep(throttle_s)
  del arrays
  atomic_write.write_bytes(os.path.join(partial, feature_source.IDS_NAME),
                           _npy_bytes(ids))
  os.remove(progress_path)
  os.remove(manifest_path)
  final = os.path.join(folder, split)
  if os.path.exists(final):
    shutil.rmtree(final)
  os.replace(partial, final)
  return {key: [len(ids), *shape] for key, shape in shapes.items()}


def _npy_bytes(array: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  np.save(buffer, array)
  return buffer.getvalue()


def extract_dataset(config: ml_collections.ConfigDict, workdir: str, *,
                    mesh=None, throttle_s: float = 0.0,
                    command: str = '') -> dict:
  """Writes `workdir/features` for every split of `config.dataset`.

  Args:
    config: `dataset.*` names the dataset, `features.*` the weights and
      settings (see `capjax/config_base.py`).
    workdir: the features go to `workdir/features`.
    mesh: the device mesh (default: every local device).
    throttle_s: seconds to wait after each chunk (tests use it to kill a run
      half-way).
    command: the command line, kept in info.json for messages.

  Returns:
    {'folder', 'images', 'resumed_images', 'seconds', 'images_per_s',
    'splits': {split: N}}: images and the rate count this run's splits.

  Raises:
    ValueError: bad settings, or a folder holding features of other weights
      or settings (one line).
  """
  check(config)
  if jax.process_count() > 1:
    raise ValueError('extract_features runs on one host (every local '
                     'device).')
  folder = os.path.join(workdir, FEATURES_DIR)
  settings = settings_of(config)
  weights = config.features.weights
  extractor = extraction.Extractor(weights, settings, mesh)
  info = _info(config, extractor, fingerprint(weights), command)
  info_path = os.path.join(folder, feature_source.INFO_NAME)
  if os.path.exists(info_path):
    saved = feature_source.read_info(folder)
    if not _same_features(info, saved):
      raise ValueError(
          f'{folder} holds features of other weights, settings or dataset; '
          'give another --workdir, or delete it to start over.')
    info['splits'] = saved.get('splits', {})
  manifest = {k: v for k, v in info.items() if k not in ('splits',
                                                         'command')}
  manifest['settings'] = dataclasses.asdict(settings)
  d = config.dataset
  opened = [pipeline.load_source(
      d.name, split, data_dir=d.data_dir or None,
      manual_dir=d.manual_dir or None,
      builder_config=d.builder_config or None, cache_images=False)
            for split in _splits(config)]
  todo = [s for s in opened if s.split not in info['splits']]
  total = sum(len(s) for s in todo)
  already = sum(_rows_done(folder, s.split) for s in todo)
  bar = progress.Progress(total, already)
  begin = time.perf_counter()
  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    for source in todo:
      info['splits'][source.split] = _extract_split(
          source, extractor, folder, manifest, bar, pool, throttle_s)
      atomic_write.write_json(info_path, info, indent=1)
  if todo:
    bar.close()
  else:  # every split was already done: only the info is (re)written
    os.makedirs(folder, exist_ok=True)
    atomic_write.write_json(info_path, info, indent=1)
  seconds = time.perf_counter() - begin
  return {'folder': folder, 'images': total, 'resumed_images': already,
          'seconds': seconds,
          'images_per_s': (total - already) / seconds if seconds else 0.0,
          'splits': {s: v['global'][0] for s, v in info['splits'].items()}}
