"""The built-in `shapes` dataset: a TFDS builder generated locally from a seed.

Each image shows 1 to 3 coloured shapes (circle, square, triangle, diamond,
star, cross; red, orange, yellow, green, blue, purple; small or large) on a
noisy dark background, with 5 captions from a small grammar
(`shapes_captions`) and the ground-truth scene (`shapes_scenes`), e.g.::

  a small red circle to the left of a large blue square
  there is a large blue square and a small red circle on its left
  two shapes : a red circle to the left of a blue square

Prepare and read it (no TensorFlow, no download)::

  builder = shapes.Shapes(config='tiny', data_dir=DIR)
  builder.download_and_prepare(file_format='array_record')
  records = builder.as_data_source('train')

or simply `sources.load_source('shapes', 'train')`. Each example:
  image: [H, W, 3] uint8, stored as PNG;
  captions: 5 strings;
  image_id: int64, unique across splits (train from 0, validation from
    1_000_000, test from 2_000_000);
  scene: JSON text (see `shapes_scenes`).
The stored order is shuffled by TFDS; `image_id` names each example. Every
example is a pure function of (config seed, split, index), so a config
prepares to the same data on any machine.

`caption_is_correct(caption, scene)` judges any caption (e.g. a model's)
against a scene; `caption_accuracy` averages it over a split.
"""

from collections.abc import Mapping
import dataclasses
import json
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from capjax import faults
from capjax.data import shapes_captions
from capjax.data import shapes_scenes

SPLITS = ('train', 'validation', 'test')
# image_id = SPLIT_ID_OFFSET * split index + example index.
SPLIT_ID_OFFSET = 1_000_000


@dataclasses.dataclass(eq=False)
class ShapesConfig(tfds.core.BuilderConfig):
  """Parameters of a `shapes` variant.

  Attributes:
    image_size: side of the square images in pixels.
    min_objects: fewest objects per image.
    max_objects: most objects per image.
    num_train: images in the train split.
    num_validation: images in the validation split.
    num_test: images in the test split.
    captions_per_image: captions per image.
    seed: everything generated is a pure function of this seed.
    shapes: the shape kinds drawn (a subset of shapes_scenes.SHAPES).
    small_side: (min, max) box side of small objects in pixels at 64 px
      (scaled with image_size).
    large_side: the same for large objects.
    templates: caption templates drawn from (see shapes_captions.templates;
      the judge understands all of them whatever is generated).
    object_order: 'random' (each caption mentions the objects in its own
      order) or 'reading' (always left to right).
  """

  image_size: int = 64
  min_objects: int = 1
  max_objects: int = 3
  num_train: int = 10_000
  num_validation: int = 1_000
  num_test: int = 1_000
  captions_per_image: int = 5
  seed: int = 0
  shapes: tuple[str, ...] = ('circle', 'square', 'triangle', 'cross')
  small_side: tuple[float, float] = (16.0, 18.0)
  large_side: tuple[float, float] = (25.0, 28.0)
  templates: tuple[str, ...] = ('plain', 'there', 'and_it', 'count')
  object_order: str = 'reading'

  def split_sizes(self) -> dict[str, int]:
    """Split name -> number of images."""
    return {'train': self.num_train, 'validation': self.num_validation,
            'test': self.num_test}


CONFIGS = {
    'default': ShapesConfig(
        name='default',
        description='64x64, 1-3 objects of 4 shapes described left to right, '
        '10000/1000/1000 images.'),
    'tiny': ShapesConfig(
        name='tiny', num_train=240, num_validation=40, num_test=40,
        description='The default language, 240/40/40 images (for tests).'),
    'hard': ShapesConfig(
        name='hard', shapes=shapes_scenes.SHAPES, small_side=(14.0, 16.0),
        large_side=(24.0, 27.0),
        templates=('plain', 'there', 'and_it', 'count', 'the'),
        object_order='random',
        description='6 shapes, smaller objects, objects in any order and '
        'definite references ("to the right of the circle").'),
    'single': ShapesConfig(
        name='single', max_objects=1,
        description='64x64, one object, 10000/1000/1000 images.'),
}


def generate_example(
    config: ShapesConfig, split: str, index: int) -> dict[str, Any]:
  """Example `index` of `split`: a pure function of (config.seed, split, index).

  Args:
    config: the dataset variant.
    split: one of SPLITS.
    index: the example's position in its split.

  Returns:
    {'image': [H, W, 3] uint8, 'captions': list of str, 'image_id': int,
     'scene': dict}.
  """
  split_index = SPLITS.index(split)
  rng = np.random.default_rng([config.seed, split_index, index])
  scene = shapes_scenes.sample_scene(
      rng, image_size=config.image_size, min_objects=config.min_objects,
      max_objects=config.max_objects, shapes=config.shapes,
      side_range={'small': tuple(v / 64 for v in config.small_side),
                  'large': tuple(v / 64 for v in config.large_side)})
  captions = shapes_captions.generate_captions(
      scene, rng, config.captions_per_image, allowed=config.templates,
      order=config.object_order)
  return {
      'image': shapes_scenes.render(scene, rng),
      'captions': captions,
      'image_id': split_index * SPLIT_ID_OFFSET + index,
      'scene': scene,
  }


class Shapes(tfds.core.GeneratorBasedBuilder):
  """Coloured shapes with grammar captions, generated locally (no download)."""

  VERSION = tfds.core.Version('1.1.0')
  RELEASE_NOTES = {
      '1.0.0': 'First release.',
      '1.1.0': 'Default: 4 larger shapes described left to right; the first '
               'default is now the `hard` config.',
  }
  BUILDER_CONFIGS = list(CONFIGS.values())

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> None:
    # TFDS looks for download checksums beside the code; there are none, and
    # the lookup would import `importlib_resources` (not a TFDS dependency).
    return None

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.image_size
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__.split('\n')[0],
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(
                shape=(size, size, 3), encoding_format='png'),
            'captions': tfds.features.Sequence(tfds.features.Text()),
            'image_id': tfds.features.Scalar(np.int64),
            'scene': tfds.features.Text(),
        }),
        supervised_keys=None,
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    return {split: self._generate_examples(split)
            for split, count in self.builder_config.split_sizes().items()
            if count > 0}

  def _generate_examples(self, split: str):
    size = self.builder_config.split_sizes()[split]
    for index in range(size):
      if index == size // 2:
        faults.kill_point('prepare')  # half a split written
      example = generate_example(self.builder_config, split, index)
      yield example['image_id'], {
          'image': shapes_scenes.encode_png(example['image']),
          'captions': example['captions'],
          'image_id': example['image_id'],
          'scene': json.dumps(
              example['scene'], separators=(',', ':')),
      }


def caption_is_correct(
    caption: str, scene: Mapping[str, Any] | str | bytes) -> bool:
  """Whether `caption` truly and completely describes `scene`.

  See `shapes_captions` for the language. Any text may be judged: anything
  that does not parse is incorrect.

  Args:
    caption: e.g. a generated caption.
    scene: a scene dict or its JSON text (the dataset's `scene` feature).

  Returns:
    True when every object is introduced exactly once and every statement
    (attributes, references, relations, count) is true of the scene.
  """
  return shapes_captions.caption_is_correct(caption, scene)


def caption_accuracy(
    captions: Mapping[int, str],
    scenes: Mapping[int, Mapping[str, Any] | str | bytes]) -> float:
  """The share of images whose caption is correct.

  Args:
    captions: image_id -> generated caption.
    scenes: image_id -> scene (dict or JSON text), for every image in
      `captions` (e.g. `pipeline.scenes(source)`).

  Returns:
    The fraction of `captions` that `caption_is_correct` accepts.
  """
  if not captions:
    raise ValueError('caption_accuracy needs at least one caption.')
  missing = [i for i in captions if i not in scenes]
  if missing:
    raise KeyError(f'No scene for image ids {missing[:5]} (of {len(missing)}).')
  correct = sum(caption_is_correct(c, scenes[i]) for i, c in captions.items())
  return correct / len(captions)
