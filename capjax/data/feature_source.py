"""A caption split whose images are precomputed CNN features.

`FeatureSource(source, 'features.npz')` wraps a photo `CaptionSource`
(Flickr8k, Karpathy splits, ...) and answers `image(i)` with the features
`python -m capjax.extract_features` wrote for that photo, matched by file
name, so the grain pipelines yield `'image'` as [batch, D] (or [batch, L, D]
grids) float32 and the `identity` encoder trains on them. Captions, image
ids and everything else come from the wrapped split.
"""

import os

import numpy as np

from capjax.data import sources


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
    """Matches every example of `source` to a row of the features file.

    Args:
      source: a split whose records carry 'file_name' (the photo datasets).
      features_path: an `.npz` from `capjax.extract_features` (names and
        the arrays `global`, and `grid` when extracted with --grid).
      key: 'global' ([N, D]) or 'grid' ([N, L, D]).

    Raises:
      ValueError: a missing array or file name, named in one line.
    """
    self.source = source
    self.name, self.split = source.name, source.split
    with np.load(features_path) as f:
      if key not in f.files:
        raise ValueError(f'{features_path} has no {key!r} array (it has '
                         f'{sorted(f.files)}); extract with --grid for '
                         'grids.')
      names = [str(n) for n in f['names']]
      self.features = f[key]
    rows = {}  # base name -> [(path parts, row)]
    for row, name in enumerate(names):
      rows.setdefault(os.path.basename(name), []).append(
          (_parts(name), row))
    self._rows = np.empty(len(source), np.int64)
    missing = []
    for i in range(len(source)):
      file_name = source.records[i]['file_name']
      if isinstance(file_name, bytes):
        file_name = file_name.decode('utf-8')
      row = _best_row(file_name, rows.get(os.path.basename(file_name), []))
      if row is None:
        missing.append(file_name)
      else:
        self._rows[i] = row
    if missing:
      raise ValueError(
          f'{features_path} has no features for {len(missing)} '
          f'{self.name} {self.split} images (first: {missing[0]}); extract '
          'the folder holding all of them.')
    self.feature_shape = tuple(self.features.shape[1:])

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
