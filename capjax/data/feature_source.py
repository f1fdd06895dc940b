"""A caption split whose images are precomputed CNN features.

Two kinds of features are read:

* a features folder, from `python -m capjax.extract_features --config=...
  --workdir=DIR` (`DIR/features`): `info.json` (architecture, weights
  fingerprint, crops, dtypes, shapes) and, per split, `SPLIT/image_ids.npy`
  [N] int64, `SPLIT/global.npy` [N, D] and optionally `SPLIT/grid.npy`
  [N, L, D] (float16 by default), memory-mapped, so a split of any size is
  read by random access without loading it; rows are matched by image id;
* an `.npz` of a loose folder (`--images=... --output=FILE.npz`), matched by
  file name.

`FeatureSource(source, path)` wraps a `CaptionSource` and answers `image(i)`
with that example's features, so the grain pipelines yield `'image'` as
[batch, D] (or [batch, L, D] grids) float32 and the `identity` encoder
trains on them. Captions, image ids and everything else come from the
wrapped split; `photo(i)` still gives the pixels (for galleries).
"""

import json
import os

import numpy as np

from capjax.data import sources

FORMAT = 'capjax-features'
VERSION = 1
INFO_NAME = 'info.json'
IDS_NAME = 'image_ids.npy'
KEYS = ('global', 'grid')
# The run meta keeps these fields of info.json: a run resumed on features of
# other weights or settings is refused.
META_FIELDS = ('arch', 'source', 'fingerprint', 'image_size', 'crop',
               'short_side', 'dtype', 'store_dtype', 'dataset')
COMMAND = ('python -m capjax.extract_features --config=configs/features/'
           '<exp>.py --workdir=DIR')


class FeaturesError(ValueError):
  """A features folder or file that cannot serve a split (one line)."""


def array_path(folder: str, split: str, key: str) -> str:
  """The `.npy` file of `key` ('global', 'grid' or 'image_ids') of a split."""
  name = IDS_NAME if key == 'image_ids' else f'{key}.npy'
  return os.path.join(folder, split, name)


def read_info(folder: str) -> dict:
  """`folder/info.json`; one-line errors naming the command that makes it."""
  path = os.path.join(folder, INFO_NAME)
  try:
    with open(path, encoding='utf-8') as f:
      info = json.load(f)
  except FileNotFoundError:
    raise FeaturesError(
        f'{folder} is not a features folder (no {INFO_NAME}); make one with '
        f'{COMMAND} (it writes DIR/features).') from None
  except json.JSONDecodeError as e:
    raise FeaturesError(f'{path} is damaged ({e}); extract the features '
                     'again.') from None
  if info.get('format') != FORMAT:
    raise FeaturesError(f'{path} is not a capjax features description (format '
                     f'{info.get("format")!r}).')
  return info


def meta_of(folder: str) -> dict:
  """What a run trained on the features of `folder` records in its meta."""
  info = read_info(folder)
  return {k: info.get(k) for k in META_FIELDS}


def _made_by(info: dict) -> str:
  return info.get('command') or COMMAND


def _parts(name: str) -> list[str]:
  return [p for p in name.replace('\\', '/').split('/') if p]


def _best_row(file_name: str, candidates: list[tuple[list[str], int]]
              ) -> int | None:
  """The row whose name shares the longest path ending with `file_name`.

  Names are matched by base name; when several folders hold that base name
  (IAPR TC-12's `NN/NNNN.jpg`), the one sharing the most trailing folders.
  """
  if len(candidates) < 2:
    return candidates[0][1] if candidates else None
  wanted = _parts(file_name)

  def shared(parts):
    count = 0
    for a, b in zip(reversed(parts), reversed(wanted)):
      if a != b:
        break
      count += 1
    return count

  return max(candidates, key=lambda c: (shared(c[0]), -c[1]))[1]


class FeatureSource:
  """The pipeline's view of a split, with features for images.

  Attributes:
    name, split: those of the wrapped split.
    feature_shape: [D] or [L, D] of one image's features.
  """

  def __init__(self, source: sources.CaptionSource, features_path: str,
               key: str = 'global'):
    """Matches every example of `source` to a row of the features.

    Args:
      source: the split to wrap.
      features_path: a features folder (rows matched by image id) or an
        `.npz` of a loose folder (rows matched by the records' 'file_name').
      key: 'global' ([N, D]) or 'grid' ([N, L, D]).

    Raises:
      ValueError: a missing split, array, image id or file name, in one line
        that says which command makes it.
    """
    if key not in KEYS:
      raise FeaturesError(
          f'Unknown features key {key!r}: choose one of {KEYS}.')
    self.source = source
    self.name, self.split = source.name, source.split
    self.key = key
    self._array_path = None  # a folder's memory-mapped .npy
    self._features = None
    if features_path.endswith('.npz'):
      rows = self._open_npz(features_path)
    else:
      rows = self._open_folder(features_path)
    self._rows = rows
    self.feature_shape = tuple(self.features.shape[1:])

  def _open_npz(self, path: str) -> np.ndarray:
    with np.load(path) as f:
      if self.key not in f.files:
        raise FeaturesError(f'{path} has no {self.key!r} array (it has '
                         f'{sorted(f.files)}); extract with --grid for '
                         'grids.')
      names = [str(n) for n in f['names']]
      self._features = f[self.key]
    by_base = {}  # base name -> [(path parts, row)]
    for row, name in enumerate(names):
      by_base.setdefault(os.path.basename(name), []).append(
          (_parts(name), row))
    wanted, rows = [], {}
    for i in range(len(self.source)):
      file_name = self.source.records[i]['file_name']
      if isinstance(file_name, bytes):
        file_name = file_name.decode('utf-8')
      wanted.append(file_name)
      row = _best_row(file_name, by_base.get(os.path.basename(file_name), []))
      if row is not None:
        rows[file_name] = row
    return self._match(wanted, rows, path,
                       'extract the folder holding all of them')

  def _open_folder(self, folder: str) -> np.ndarray:
    info = read_info(folder)
    splits = info.get('splits', {})
    if self.split not in splits:
      raise FeaturesError(
          f'{folder} has no {self.split!r} split (it has '
          f'{", ".join(sorted(splits)) or "none"}); extract it with '
          f'{_made_by(info)}.')
    if self.key not in splits[self.split]:
      raise FeaturesError(
          f'{folder} has no {self.key!r} features of {self.split!r}; '
          'extract them with features.grid=True.')
    self._array_path = array_path(folder, self.split, self.key)
    ids = np.load(array_path(folder, self.split, 'image_ids'))
    by_id = {int(image_id): row for row, image_id in enumerate(ids)}
    return self._match([int(i) for i in self.source.image_ids], by_id,
                       folder, f'extract them again with {_made_by(info)}')

  def _match(self, wanted, rows: dict, path: str, what_to_do: str):
    out = np.empty(len(wanted), np.int64)
    missing = []
    for i, key in enumerate(wanted):
      row = rows.get(key)
      if row is None:
        missing.append(key)
      else:
        out[i] = row
    if missing:
      kind = 'image id' if isinstance(missing[0], int) else 'first'
      raise FeaturesError(
          f'{path} has no features for {len(missing)} {self.name} '
          f'{self.split} images ({kind}: {missing[0]}); {what_to_do}.')
    return out

  @property
  def features(self) -> np.ndarray:
    """[N, D] or [N, L, D]: the stored rows (memory-mapped from a folder)."""
    if self._features is None:
      self._features = np.load(self._array_path, mmap_mode='r')
    return self._features

  def __getstate__(self):
    # Worker processes map the folder's file again rather than copy it.
    state = dict(self.__dict__)
    if state['_array_path'] is not None:
      state['_features'] = None
    return state

  def __len__(self) -> int:
    return len(self.source)

  def __repr__(self) -> str:
    return (f'FeatureSource({self.name!r}, {self.split!r}, {len(self)} '
            f'images, features {self.feature_shape})')

  def image(self, index: int) -> np.ndarray:
    """The features of example `index`: [D] or [L, D] float32."""
    return np.asarray(self.features[self._rows[index]], np.float32)

  def blank_image(self) -> np.ndarray:
    """Zeros shaped like `image(i)`, for padded eval positions."""
    return np.zeros(self.feature_shape, np.float32)

  def photo(self, index: int) -> np.ndarray:
    """The pixels of example `index` (the wrapped split's `image`)."""
    return self.source.image(index)

  @property
  def records(self):
    return self.source.records

  @property
  def image_ids(self) -> np.ndarray:
    return self.source.image_ids

  @property
  def captions(self) -> list[list[str]]:
    return self.source.captions

  @property
  def scenes(self):
    return self.source.scenes

  @property
  def labels(self):
    return self.source.labels
