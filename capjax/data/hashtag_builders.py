"""TFDS builders of hashtag datasets: shapes, Flickr8k, HARRISON, tags.tsv.

Each example is a caption-dataset example whose one caption is the image's
tag sequence (see `hashtags`), so `sources.load_source` and the caption
pipelines read them unchanged:

  shapes_hashtags    built in: shapes scenes tagged by `hashtags.shapes_tags`
                     (configs: default 10000/1000/1000, tiny 240/40/40)
  flickr8k_hashtags  the official Flickr8k files (manual_dir); tags are the
                     content words most of the five captions share
  harrison           HARRISON's released layout (manual_dir): data_list.txt,
                     tag_list.txt, vocab_index.txt, instagram_dataset/
  tag_folder         any folder (manual_dir) with `tags.tsv` lines
                     `file<TAB>tag tag tag`, files relative to the folder

HARRISON and tag folders have no official split: a file goes to train,
validation or test by the CRC32 of its listed path (80/10/10 by default), so
the split is the same on every machine. Missing and corrupt images are
skipped with a warning and counted (`builder.info.metadata['skipped']`);
images left with no tag are dropped with a warning.
"""

import dataclasses
import json
import os

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from capjax.data import flickr8k
from capjax.data import hashtags
from capjax.data import photo_builder
from capjax.data import shapes
from capjax.data import shapes_scenes

# (train, validation, test) shares of datasets without an official split.
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
# Flickr8k: a tag is a word used by more than this share of the captions.
FLICKR8K_MIN_SHARE = 0.5
FLICKR8K_MAX_TAGS = 10


@dataclasses.dataclass(eq=False)
class ShapesHashtagsConfig(shapes.ShapesConfig):
  """A shapes variant with tags instead of captions.

  Attributes:
    noise_top: probability of the most frequent uninformative tag.
    noise_exponent: Zipf exponent of the uninformative tags' frequencies.
  """

  noise_top: float = 0.6
  noise_exponent: float = 1.0


class ShapesHashtags(tfds.core.GeneratorBasedBuilder):
  """Shapes scenes with hashtags (#red #circle #small #one #instagood ...)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}
  BUILDER_CONFIGS = [
      ShapesHashtagsConfig(
          name='default', description='64x64, 1-3 objects, 10000/1000/1000.'),
      ShapesHashtagsConfig(
          name='tiny', num_train=240, num_validation=40, num_test=40,
          description='240/40/40 images (for tests).'),
  ]

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> None:
    return None  # No checksums to look up (see shapes.Shapes.code_path).

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.image_size
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.__doc__,
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(
                shape=(size, size, 3), encoding_format='png'),
            'captions': tfds.features.Sequence(tfds.features.Text()),
            'image_id': tfds.features.Scalar(np.int64),
            'scene': tfds.features.Text(),
        }),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    return {split: self._generate_examples(split)
            for split, count in self.builder_config.split_sizes().items()
            if count > 0}

  def _generate_examples(self, split: str):
    config = self.builder_config
    for index in range(config.split_sizes()[split]):
      yield self._example(split, index)

  def _example(self, split: str, index: int):
    config = self.builder_config
    example = shapes.generate_example(config, split, index)
    # The noise tags draw from their own stream: the images stay those of
    # `shapes` with the same settings.
    rng = np.random.default_rng(
        [config.seed, shapes.SPLITS.index(split), index, 13])
    tags = hashtags.shapes_tags(
        example['scene'], rng, noise_top=config.noise_top,
        noise_exponent=config.noise_exponent)
    return example['image_id'], {
        'image': shapes_scenes.encode_png(example['image']),
        'captions': [hashtags.as_caption(tags)],
        'image_id': example['image_id'],
        'scene': json.dumps(example['scene'], separators=(',', ':')),
    }


class Flickr8kHashtags(flickr8k.Flickr8k):
  """Flickr8k photos tagged with the content words their captions share."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = flickr8k.Flickr8k.MANUAL_DOWNLOAD_INSTRUCTIONS

  def _split_entries(self, manual_dir):
    entries = super()._split_entries(manual_dir)
    tagged = {}
    for split, split_entries in entries.items():
      tagged[split] = []
      for entry in split_entries:
        tags = hashtags.caption_tags(
            entry.captions, min_share=FLICKR8K_MIN_SHARE,
            max_tags=FLICKR8K_MAX_TAGS)
        tagged[split].append(dataclasses.replace(
            entry, captions=(hashtags.as_caption(tags),)))
    return tagged


@dataclasses.dataclass(eq=False)
class SplitConfig(photo_builder.PhotoConfig):
  """A tag-folder variant: the split shares of its files.

  Attributes:
    fractions: (train, validation, test), summing to 1.
  """

  fractions: tuple[float, float, float] = DEFAULT_FRACTIONS


def _entries_by_split(
    dataset: str, manual_dir: str, listed: list[tuple[str, list[str]]],
    fractions) -> dict[str, list[photo_builder.PhotoEntry]]:
  """PhotoEntries per split from (relative file, tags) pairs."""
  entries = {split: [] for split in hashtags.SPLITS}
  untagged = 0
  for line, (file_name, tags) in enumerate(listed):
    caption = hashtags.as_caption(tags)
    if not caption:
      untagged += 1
      logging.warning('%s: dropping %s: no tags.', dataset, file_name)
      continue
    split = hashtags.split_of(file_name, fractions)
    entries[split].append(photo_builder.PhotoEntry(
        image_id=line, path=os.path.join(manual_dir, file_name),
        file_name=file_name, captions=(caption,)))
  if untagged:
    logging.warning('%s: dropped %d images without tags.', dataset, untagged)
  return entries


class Harrison(photo_builder.PhotoCaptionBuilder):
  """HARRISON (Instagram photos with hashtags) from its released files."""

  BUILDER_CONFIGS = [SplitConfig(
      name='default', description='80/10/10 split by file-name hash.')]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  put HARRISON's released files there unchanged: data_list.txt, tag_list.txt,
  vocab_index.txt and the instagram_dataset/ folder of photos.
  """

  def _split_entries(self, manual_dir):
    return _entries_by_split(
        'harrison', manual_dir, hashtags.read_harrison(manual_dir),
        self.builder_config.fractions)


class TagFolder(photo_builder.PhotoCaptionBuilder):
  """Any folder of images with a tags.tsv (`file<TAB>tag tag tag`)."""

  BUILDER_CONFIGS = [SplitConfig(
      name='default', description='80/10/10 split by file-name hash.')]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  put a tags.tsv there, one image a line: `file<TAB>tag tag tag`, file names
  relative to the folder.
  """

  def _split_entries(self, manual_dir):
    path = photo_builder.find_file(
        manual_dir, ['tags.tsv'], 'tags.tsv', 'tag_folder')
    return _entries_by_split(
        'tag_folder', manual_dir, hashtags.read_tags_tsv(path),
        self.builder_config.fractions)
