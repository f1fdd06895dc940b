"""Wang's SIMPLIcity 1000 images (TFDS builder): 10 classes, no captions.

`manual_dir` holds `0.jpg` .. `999.jpg` (Wang, Li and Wiederhold 2001), at
its top or in `image.orig/` or `images/`. The class of image N is N // 100:
africa, beaches, buildings, buses, dinosaurs, elephants, flowers, horses,
mountains, food. There are no captions: as in seed 004 (the BiLSTM
retrieval paper), each image's one text is its class keyword, its only
"caption", and each example also carries its class as `label`, which the
retrieval evaluator reads for the per-class precision and recall at K.

Configs:
  default       test = all 1000 images: the paper trains on Flickr8k and
                queries Wang's images class by class (image -> keyword,
                keyword -> image), so the whole set is an evaluation set.
  flickr_words  the same with each keyword as Flickr8k's captions write it
                (FLICKR_WORDS: 'beach', not 'beaches', which they never
                use), so a Flickr8k vocabulary knows every query.
  split         for training on SIMPLIcity itself, per class: images N with
                N % 100 < 80 train (800), 80..89 validation (100), 90..99
                test (100).
The paper names its classes but not the exact keyword text; `label` is
always the class name of CLASSES.
A missing or corrupt image is skipped and counted (see `photo_builder`).
"""

import dataclasses
import os

from capjax.data import photo_builder

CLASSES = ('africa', 'beaches', 'buildings', 'buses', 'dinosaurs',
           'elephants', 'flowers', 'horses', 'mountains', 'food')
# Each class's word as Flickr8k's captions write it (how often they do):
# 'africa' (0; african 54), 'beaches' (0; beach 1046), 'dinosaurs' (0;
# dinosaur 3), ... A Flickr8k vocabulary knows these.
FLICKR_WORDS = ('african', 'beach', 'building', 'bus', 'dinosaur',
                'elephant', 'flowers', 'horse', 'mountain', 'food')
NUM_IMAGES = 1000
IMAGES_PER_CLASS = NUM_IMAGES // len(CLASSES)
IMAGE_DIRS = ('', 'image.orig', 'images')


def image_class(file_name: str) -> tuple[int, str]:
  """'314.jpg' -> (3, 'buses'); ValueError for a name outside 0..999."""
  stem = os.path.splitext(os.path.basename(file_name))[0]
  if not stem.isdigit() or int(stem) >= NUM_IMAGES:
    raise ValueError(f'{file_name}: SIMPLIcity images are 0.jpg .. 999.jpg.')
  label = int(stem) // IMAGES_PER_CLASS
  return label, CLASSES[label]


@dataclasses.dataclass(eq=False)
class SimplicityConfig(photo_builder.PhotoConfig):
  """Which splits to make.

  Attributes:
    train_per_class: images of each class in train (the first ones).
    validation_per_class: the next ones, in validation; the rest are test.
    keywords: the text (caption) of each class, in CLASSES order.
  """

  train_per_class: int = 0
  validation_per_class: int = 0
  keywords: tuple[str, ...] = CLASSES


def split_of(image_number: int, config: SimplicityConfig) -> str:
  """The split image `image_number` belongs to under `config`."""
  within = image_number % IMAGES_PER_CLASS
  if within < config.train_per_class:
    return 'train'
  if within < config.train_per_class + config.validation_per_class:
    return 'validation'
  return 'test'


def find_image_dir(manual_dir: str) -> str:
  """The folder of `manual_dir` holding the numbered images."""
  for folder in IMAGE_DIRS:
    path = os.path.join(manual_dir, folder)
    if os.path.isdir(path) and any(
        os.path.exists(os.path.join(path, f'{n}.jpg'))
        for n in range(NUM_IMAGES)):
      return path
  raise FileNotFoundError(
      f'simplicity: no 0.jpg .. 999.jpg in {manual_dir} (looked in '
      f'{", ".join(d or "." for d in IMAGE_DIRS)}); put Wang\'s 1000 images '
      'there.')


class Simplicity(photo_builder.PhotoCaptionBuilder):
  """SIMPLIcity's 1000 photos; the class keyword is each one's caption."""

  HAS_LABELS = True
  BUILDER_CONFIGS = [
      SimplicityConfig(
          name='default',
          description='All 1000 images in test (seed 004: evaluation only).'),
      SimplicityConfig(
          name='flickr_words', keywords=FLICKR_WORDS,
          description='All 1000 in test; keywords in Flickr8k words.'),
      SimplicityConfig(
          name='split', train_per_class=80, validation_per_class=10,
          description='Per class 80 train / 10 validation / 10 test.'),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  put Wang's SIMPLIcity images 0.jpg .. 999.jpg there (or in image.orig/).
  """

  def _split_entries(
      self, manual_dir: str) -> dict[str, list[photo_builder.PhotoEntry]]:
    image_dir = find_image_dir(manual_dir)
    entries = {'train': [], 'validation': [], 'test': []}
    for number in range(NUM_IMAGES):
      path = os.path.join(image_dir, f'{number}.jpg')
      label, name = image_class(path)
      entries[split_of(number, self.builder_config)].append(
          photo_builder.PhotoEntry(
              image_id=number, path=path,
              file_name=os.path.relpath(path, manual_dir),
              captions=(self.builder_config.keywords[label],), label=name))
    return entries
