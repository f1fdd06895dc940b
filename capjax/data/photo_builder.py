"""Shared base of the TFDS builders for real photo-caption datasets.

A subclass reads the user's files (under `manual_dir`) into `PhotoEntry`
lists per split; this base checks every image, skips and counts those with no
captions and the missing or corrupt ones (with a warning naming each file),
and stores JPEG bytes.
Each example:
  image: JPEG bytes (decoded and resized by the input pipeline);
  captions: the image's captions (raw text);
  image_id: int64, stable across preparations (e.g. the COCO id);
  file_name: the image's path relative to `manual_dir`;
  label: the image's class (only builders with `HAS_LABELS`, e.g.
    SIMPLIcity; the retrieval evaluator's per-class P/R@K reads it).
The counts of skipped images are saved in the dataset's metadata
(`builder.info.metadata['skipped']`: split -> {'missing', 'corrupt',
'no_captions'}).
"""

import abc
from collections.abc import Sequence
import dataclasses
import os

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from capjax.data import images


@dataclasses.dataclass(frozen=True)
class PhotoEntry:
  """One image of a split: where it is and what its captions say."""

  image_id: int
  path: str  # Absolute path of the image file.
  file_name: str  # Path relative to manual_dir, stored with the example.
  captions: tuple[str, ...]  # Empty: the image is skipped and counted.
  label: str = ''  # The image's class (builders with HAS_LABELS only).


@dataclasses.dataclass(eq=False)
class PhotoConfig(tfds.core.BuilderConfig):
  """A variant of a photo dataset.

  Attributes:
    min_side: if set, photos whose shorter side is longer are shrunk to it
      when the dataset is prepared (smaller files, faster decoding).
  """

  min_side: int | None = None


def check_manual_dir(manual_dir: str | os.PathLike | None, dataset: str) -> str:
  """Returns `manual_dir` as a str, or raises a one-line error about it."""
  if manual_dir is None:
    raise FileNotFoundError(
        f'{dataset} reads files you already have: pass manual_dir=<folder '
        'holding them>.')
  manual_dir = os.fspath(manual_dir)
  if not os.path.isdir(manual_dir):
    raise FileNotFoundError(
        f'{dataset} manual_dir {manual_dir} does not exist or is not a '
        'folder.')
  return manual_dir


def find_file(
    manual_dir: str, candidates: Sequence[str], what: str, dataset: str) -> str:
  """The first of `candidates` (relative to manual_dir) that exists."""
  for candidate in candidates:
    path = os.path.join(manual_dir, candidate)
    if os.path.exists(path):
      return path
  raise FileNotFoundError(
      f'{dataset}: no {what} in {manual_dir} (looked for '
      f'{", ".join(candidates)}).')


class PhotoCaptionBuilder(
    tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base builder: subclasses implement `_split_entries`."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}
  HAS_LABELS = False  # Examples carry a 'label' (the image's class).

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> None:
    # TFDS looks for download checksums beside the code; there are none, and
    # the lookup would import `importlib_resources` (not a TFDS dependency).
    return None

  def _info(self) -> tfds.core.DatasetInfo:
    features = {
        'image': tfds.features.Image(
            shape=(None, None, 3), encoding_format='jpeg'),
        'captions': tfds.features.Sequence(tfds.features.Text()),
        'image_id': tfds.features.Scalar(np.int64),
        'file_name': tfds.features.Text(),
    }
    if self.HAS_LABELS:
      features['label'] = tfds.features.Text()
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.__doc__,
        features=tfds.features.FeaturesDict(features),
        metadata=tfds.core.MetadataDict(skipped={}),
    )

  @abc.abstractmethod
  def _split_entries(self, manual_dir: str) -> dict[str, list[PhotoEntry]]:
    """Reads the user's files: split name -> its images."""

  def _split_generators(self, dl_manager):
    try:
      manual_dir = os.fspath(dl_manager.manual_dir)
    except AssertionError:  # TFDS: the folder is missing or empty.
      raise FileNotFoundError(
          f'{self.name}: manual_dir '
          f'{getattr(dl_manager, "_manual_dir", None)} does not exist or is '
          f'empty; {self.MANUAL_DOWNLOAD_INSTRUCTIONS.strip()}') from None
    entries = self._split_entries(manual_dir)
    ids = [e.image_id for split in entries.values() for e in split]
    if len(set(ids)) != len(ids):
      raise ValueError(f'{self.name}: image ids are not unique in '
                       f'{manual_dir}.')
    return {split: self._generate_examples(split, split_entries)
            for split, split_entries in entries.items() if split_entries}

  def _generate_examples(self, split: str, entries: Sequence[PhotoEntry]):
    missing = corrupt = no_captions = 0
    for entry in entries:
      if not entry.captions:
        logging.warning('%s %s: skipping image %s: it has no captions.',
                        self.name, split, entry.file_name)
        no_captions += 1
        continue
      if not os.path.exists(entry.path):
        logging.warning('%s %s: skipping missing image %s', self.name, split,
                        entry.path)
        missing += 1
        continue
      try:
        data = images.read_image_file(
            entry.path, min_side=self.builder_config.min_side)
      except images.BadImageError as e:
        logging.warning('%s %s: skipping image: %s', self.name, split, e)
        corrupt += 1
        continue
      example = {
          'image': data,
          'captions': list(entry.captions),
          'image_id': entry.image_id,
          'file_name': entry.file_name,
      }
      if self.HAS_LABELS:
        example['label'] = entry.label
      yield entry.image_id, example
    self.info.metadata['skipped'][split] = {
        'missing': missing, 'corrupt': corrupt, 'no_captions': no_captions}
    if missing or corrupt or no_captions:
      logging.warning(
          '%s %s: skipped %d of %d images (%d missing, %d corrupt, %d with '
          'no captions).', self.name, split, missing + corrupt + no_captions,
          len(entries), missing, corrupt, no_captions)
