"""Caption datasets by name: preparing them and reading one split by index.

`load_source(name, split)` returns a `CaptionSource`: random access to the
split's examples (prepared once by its TFDS builder into `array_record`
files) plus an index of every example's id and captions. Registered names:

  shapes       built-in, generated locally (configs: default, tiny, single)
  flickr8k     official Flickr8k files in manual_dir (configs: default, min256)
  coco         Karpathy-split COCO: dataset_coco.json + photos in manual_dir
  flickr30k    Karpathy-split Flickr30k: dataset_flickr30k.json + photos
  karpathy     any Karpathy JSON (configs: coco, flickr30k, flickr8k)
  flickr30k_token  Flickr30k's results_20130124.token + photos, Karpathy's
               split when dataset_flickr30k.json is beside it, else
               deterministic 1,000 test / 1,000 validation (default, min256)
  iapr_tc12    IAPR TC-12 release (images/, annotations_complete_eng/): the
               DESCRIPTION's clauses as captions, the standard
               iaprtc12_{train,test}_list.txt when given (configs: default
               = 5% of train as validation, full_train)
  simplicity   Wang's SIMPLIcity 0.jpg .. 999.jpg, class keyword as caption
               and `label` (configs: default = all in test, flickr_words,
               split)
  shapes_hashtags, flickr8k_hashtags, harrison, tag_folder
               hashtag datasets, one tag sequence per image as its caption
               (see `hashtag_builders`; a tag_folder needs its own data_dir)

A config is chosen with `builder_config='tiny'` or the name `'shapes/tiny'`;
`builder_config` may also be a BuilderConfig object for a custom variant.
"""

from collections.abc import Sequence
import contextlib
import dataclasses
import fcntl
import glob
import json
import os
import shutil
from typing import Any

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from capjax import atomic_write
from capjax.data import flickr30k
from capjax.data import flickr8k
from capjax.data import hashtag_builders
from capjax.data import iapr_tc12
from capjax.data import images
from capjax.data import karpathy
from capjax.data import photo_builder
from capjax.data import shapes
from capjax.data import simplicity

# Photos of real datasets are resized to this (height and width) by default.
DEFAULT_IMAGE_SIZE = 224
# By default a split keeps its decoded images in memory when they fit in this.
AUTO_CACHE_BYTES = 256 * 2**20
INDEX_FORMAT = 'capjax.caption_index'


@dataclasses.dataclass(frozen=True)
class DatasetEntry:
  """How to build a registered dataset.

  Attributes:
    builder: the TFDS builder class.
    default_config: its config name used when none is given.
    needs_manual_dir: the builder reads files the user already has.
  """

  builder: type[tfds.core.DatasetBuilder]
  default_config: str
  needs_manual_dir: bool


REGISTRY = {
    'shapes': DatasetEntry(shapes.Shapes, 'default', False),
    'flickr8k': DatasetEntry(flickr8k.Flickr8k, 'default', True),
    'coco': DatasetEntry(karpathy.KarpathyCaptions, 'coco', True),
    'flickr30k': DatasetEntry(karpathy.KarpathyCaptions, 'flickr30k', True),
    'karpathy': DatasetEntry(karpathy.KarpathyCaptions, 'coco', True),
    'flickr30k_token': DatasetEntry(
        flickr30k.Flickr30kToken, 'default', True),
    'iapr_tc12': DatasetEntry(iapr_tc12.IaprTc12, 'default', True),
    'simplicity': DatasetEntry(simplicity.Simplicity, 'default', True),
    'shapes_hashtags': DatasetEntry(
        hashtag_builders.ShapesHashtags, 'default', False),
    'flickr8k_hashtags': DatasetEntry(
        hashtag_builders.Flickr8kHashtags, 'default', True),
    'harrison': DatasetEntry(hashtag_builders.Harrison, 'default', True),
    'tag_folder': DatasetEntry(hashtag_builders.TagFolder, 'default', True),
}


class CaptionSource:
  """One split of a caption dataset, read by random access.

  Attributes:
    name: the registered dataset name.
    split: 'train', 'validation' or 'test'.
    image_shape: (height, width) of the images that `image` returns.
  """

  def __init__(
      self, records: Sequence[dict[str, Any]], *, name: str, split: str,
      image_shape: tuple[int, int], resize: bool,
      index_path: str | None = None, cache_images: bool | None = None):
    """Wraps TFDS records whose `image` feature is left encoded.

    Args:
      records: random-access examples with 'image' (PNG/JPEG bytes),
        'captions' (bytes), 'image_id' and optionally 'scene'.
      name: the dataset name, for messages.
      split: the split name, for messages.
      image_shape: (height, width) that decoded images have.
      resize: resize decoded images to image_shape (photos of any size).
      index_path: JSON file caching the caption index (written on first use
        if its folder is writable).
      cache_images: keep each image once decoded in memory, so later epochs
        skip reading and decoding (None: when all of them fit in
        AUTO_CACHE_BYTES).
    """
    self.records = records
    self.name = name
    self.split = split
    self.image_shape = tuple(image_shape)
    self._resize = resize
    self._index_path = index_path
    self._index = None
    self._image_ids = None
    if cache_images is None:
      cache_images = self.decoded_bytes() <= AUTO_CACHE_BYTES
    self.cache_images = cache_images
    self._cache = None  # [num_examples, H, W, 3] uint8, allocated lazily.
    self._cached = None  # [num_examples] bool

  def __len__(self) -> int:
    return len(self.records)

  def __repr__(self) -> str:
    return (f'CaptionSource({self.name!r}, {self.split!r}, {len(self)} images,'
            f' image_shape={self.image_shape})')

  def decode_image(self, data: bytes) -> np.ndarray:
    """PNG/JPEG bytes -> [height, width, 3] uint8 of `image_shape`."""
    image = images.decode(data, self.image_shape if self._resize else None)
    if image.shape[:2] != self.image_shape:
      raise ValueError(f'{self.name} {self.split}: an image is '
                       f'{image.shape[:2]}, expected {self.image_shape}.')
    return image

  def blank_image(self) -> np.ndarray:
    """[height, width, 3] uint8 zeros: the image of padded eval positions."""
    return np.zeros(self.image_shape + (3,), np.uint8)

  def decoded_bytes(self) -> int:
    """Bytes that all decoded images of the split take."""
    height, width = self.image_shape
    return len(self) * height * width * 3

  def image(self, index: int) -> np.ndarray:
    """The decoded image of example `index`: [height, width, 3] uint8."""
    if not self.cache_images:
      return self.decode_image(self.records[index]['image'])
    if self._cache is None:
      # Untouched pages of np.empty take no memory until written.
      self._cache = np.empty((len(self),) + self.image_shape + (3,), np.uint8)
      self._cached = np.zeros(len(self), bool)
    if not self._cached[index]:
      # Threads may decode the same image twice; both write equal pixels.
      self._cache[index] = self.decode_image(self.records[index]['image'])
      self._cached[index] = True
    return self._cache[index]

  def _load_index(self) -> dict[str, Any]:
    if self._index is not None:
      return self._index
    if self._index_path and os.path.exists(self._index_path):
      with open(self._index_path, encoding='utf-8') as f:
        index = json.load(f)
      if (index.get('format') == INDEX_FORMAT
          and len(index['image_ids']) == len(self)):
        self._index = index
        return index
    index = {'format': INDEX_FORMAT, 'image_ids': [], 'captions': [],
             'scenes': [], 'labels': []}
    for i in range(len(self)):
      record = self.records[i]
      index['image_ids'].append(int(record['image_id']))
      index['captions'].append([c.decode('utf-8') if isinstance(c, bytes)
                                else str(c) for c in record['captions']])
      for field, key in (('scene', 'scenes'), ('label', 'labels')):
        value = record.get(field)
        if value is not None:
          index[key].append(
              value.decode('utf-8') if isinstance(value, bytes) else value)
    for key in ('scenes', 'labels'):
      if len(index[key]) != len(self):
        index[key] = None
    self._index = index
    if self._index_path:
      _write_json_atomically(self._index_path, index)
    return index

  @property
  def image_ids(self) -> np.ndarray:
    """[num_examples] int64: the image id of each example, in index order."""
    if self._image_ids is None:
      self._image_ids = np.asarray(self._load_index()['image_ids'], np.int64)
      self._image_ids.flags.writeable = False
    return self._image_ids

  @property
  def captions(self) -> list[list[str]]:
    """The raw captions of each example, in index order."""
    return self._load_index()['captions']

  @property
  def scenes(self) -> list[str] | None:
    """The JSON scene of each example (shapes only; else None)."""
    return self._load_index()['scenes']

  @property
  def labels(self) -> list[str] | None:
    """The class of each example (datasets with classes, e.g. simplicity)."""
    return self._load_index().get('labels')

  def __getstate__(self):
    # Worker processes re-read the small index rather than receive it.
    state = dict(self.__dict__)
    for key in ('_index', '_image_ids', '_cache', '_cached'):
      state[key] = None
    return state


def _write_json_atomically(path: str, data: Any) -> None:
  try:
    atomic_write.write_json(path, data)
  except OSError as e:  # A read-only dataset folder: keep it in memory.
    logging.info('Not caching the caption index beside %s: %s', path, e)


@contextlib.contextmanager
def _prepare_lock(builder: tfds.core.DatasetBuilder):
  """Serialises preparation of one dataset variant across local processes."""
  lock_dir = os.path.join(os.fspath(builder.data_dir_root), '.capjax-locks')
  os.makedirs(lock_dir, exist_ok=True)
  name = f'{builder.name}-{builder.builder_config.name}.lock'
  with open(os.path.join(lock_dir, name), 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


# TFDS prepares `<config>/<version>` in `<config>/incomplete.XXXXXX_<version>`
# and renames it when done; a killed preparation leaves that folder behind.
INCOMPLETE_PATTERN = 'incomplete.??????_{version}'


def remove_stale_preparations(builder: tfds.core.DatasetBuilder) -> list[str]:
  """Deletes the folders that killed preparations of `builder` left.

  Call it only while holding `_prepare_lock(builder)`: then no preparation
  of this variant is running and every such folder is stale.

  Returns:
    The deleted folders.
  """
  data_dir = os.fspath(builder.data_dir).rstrip('/')
  pattern = os.path.join(
      os.path.dirname(data_dir),
      INCOMPLETE_PATTERN.format(version=os.path.basename(data_dir)))
  stale = sorted(glob.glob(pattern))
  for path in stale:
    logging.info('Removing %s, left by a preparation that did not finish.',
                 path)
    shutil.rmtree(path, ignore_errors=True)
  return stale


def _is_prepared(builder: tfds.core.DatasetBuilder) -> bool:
  # Like builder.is_prepared(), without its warning about absent folders.
  return os.path.exists(os.path.join(builder.data_dir, 'dataset_info.json'))


def resolve(name: str, builder_config) -> tuple[DatasetEntry, Any]:
  """The registry entry and builder config a dataset name stands for.

  Raises:
    ValueError: an unknown dataset or builder config, in one line.
  """
  base, _, config_in_name = name.partition('/')
  if base not in REGISTRY:
    raise ValueError(f'Unknown dataset {name!r}; known: '
                     f'{", ".join(sorted(REGISTRY))}.')
  if config_in_name and builder_config is not None:
    raise ValueError(f'Dataset {name!r} names a config; do not also pass '
                     f'builder_config={builder_config!r}.')
  entry = REGISTRY[base]
  config = builder_config or config_in_name or entry.default_config
  if isinstance(config, str):
    known = [c.name for c in entry.builder.BUILDER_CONFIGS]
    if config not in known:
      raise ValueError(f'Unknown config {config!r} of dataset {base!r}; '
                       f'known: {", ".join(known)}.')
  return entry, config


def prepare(
    name: str, *, data_dir: str | None = None, manual_dir: str | None = None,
    builder_config: str | tfds.core.BuilderConfig | None = None,
) -> tfds.core.DatasetBuilder:
  """Prepares a registered dataset (once) and returns its builder.

  Args:
    name: a REGISTRY name, optionally with '/config'.
    data_dir: where TFDS keeps prepared data (TFDS default when None).
    manual_dir: folder with the user's files (real datasets only).
    builder_config: config name or object (default: the entry's).

  Returns:
    The prepared TFDS builder.
  """
  entry, config = resolve(name, builder_config)

  def make():
    return entry.builder(config=config, data_dir=data_dir,
                         file_format='array_record')

  builder = make()
  if _is_prepared(builder):
    return builder
  if entry.needs_manual_dir:
    manual_dir = photo_builder.check_manual_dir(manual_dir, name)
  with _prepare_lock(builder):
    if _is_prepared(builder):  # Another process prepared it meanwhile.
      return make()
    remove_stale_preparations(builder)
    builder.download_and_prepare(
        file_format='array_record',
        download_config=tfds.download.DownloadConfig(
            manual_dir=manual_dir, try_download_gcs=False))
  return builder


def load_source(
    name: str, split: str, *, data_dir: str | None = None,
    manual_dir: str | None = None,
    builder_config: str | tfds.core.BuilderConfig | None = None,
    image_size: int | tuple[int, int] | None = None,
    cache_images: bool | None = None) -> CaptionSource:
  """Opens one split of a registered dataset, preparing it first if needed.

  Args:
    name: a REGISTRY name ('shapes', 'flickr8k', 'coco', ...), optionally
      with '/config' ('shapes/tiny').
    split: 'train', 'validation' or 'test'.
    data_dir: where TFDS keeps prepared data (TFDS default when None).
    manual_dir: folder with the user's files; needed to prepare real
      datasets, not to read them once prepared.
    builder_config: config name or object (default: the entry's).
    image_size: side (or (height, width)) that images are resized to. None:
      the stored size for `shapes`, DEFAULT_IMAGE_SIZE for photos.
    cache_images: keep decoded images in memory (None: if they fit in
      AUTO_CACHE_BYTES; see CaptionSource).

  Returns:
    The split as a CaptionSource.
  """
  builder = prepare(name, data_dir=data_dir, manual_dir=manual_dir,
                    builder_config=builder_config)
  if split not in builder.info.splits:
    raise ValueError(f'Dataset {name!r} has no split {split!r}; it has '
                     f'{", ".join(sorted(builder.info.splits))}.')
  stored = builder.info.features['image'].shape[:2]
  if image_size is None:
    shape = stored if None not in stored else (DEFAULT_IMAGE_SIZE,) * 2
  elif isinstance(image_size, int):
    shape = (image_size, image_size)
  else:
    shape = tuple(image_size)
  records = builder.as_data_source(
      split, decoders={'image': tfds.decode.SkipDecoding()})
  return CaptionSource(
      records, name=name, split=split, image_shape=shape,
      resize=tuple(stored) != tuple(shape),
      index_path=os.path.join(builder.data_dir, f'capjax-index-{split}.json'),
      cache_images=cache_images)
