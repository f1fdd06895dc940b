"""Flickr30k from its own caption file `results_20130124.token` (TFDS builder).

`manual_dir` holds the release::

  results_20130124.token        <file>.jpg#<k>\\t<caption>, 5 per image
                                (Flickr8k's format; also read from a
                                `flickr30k/` subfolder)
  flickr30k-images/ or images/  the JPEG photos (31,783)
  dataset_flickr30k.json        optional: Karpathy's split

Splits: Karpathy's (train with restval / val / test: 29,000 / 1,014 /
1,000) when `dataset_flickr30k.json` is beside the token file (images it
does not list are left out, with a warning); else a deterministic split:
the images ordered by the CRC32 of their file name (then the name), the
first `heldout` (1,000) are test, the next 1,000 validation, the rest train
(the usual 1,000 / 1,000 protocol). The captions are always the token
file's. `image_id` is the Flickr photo id, the number of the file name.
"""

import dataclasses
import json
import os
import zlib

from absl import logging

from capjax.data import flickr8k
from capjax.data import karpathy
from capjax.data import photo_builder

TOKEN_FILE = 'results_20130124.token'
TEXT_DIRS = ('', 'flickr30k')
IMAGE_DIRS = ('flickr30k-images', 'images')
KARPATHY_JSON = 'dataset_flickr30k.json'


@dataclasses.dataclass(eq=False)
class Flickr30kConfig(photo_builder.PhotoConfig):
  """A variant of Flickr30k from the token file.

  Attributes:
    heldout: images in test and in validation when no Karpathy JSON gives
      the split.
  """

  heldout: int = 1000


def image_id_of(file_name: str) -> int:
  """'1000092795.jpg' -> 1000092795 (else Flickr8k's stable fallback)."""
  stem = os.path.splitext(file_name)[0]
  return int(stem) if stem.isdigit() else flickr8k.image_id_of(file_name)


def karpathy_splits(path: str) -> dict[str, str]:
  """File name -> 'train' / 'validation' / 'test' from a Karpathy JSON."""
  try:
    with open(path, encoding='utf-8') as f:
      data = json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f'{path} is not valid JSON: {e}.') from None
  if not isinstance(data, dict) or not isinstance(data.get('images'), list):
    raise ValueError(f'{path} has no "images" list; expected Karpathy\'s '
                     f'{KARPATHY_JSON}.')
  out = {}
  for index, image in enumerate(data['images']):
    split = image.get('split')
    if split not in karpathy.SPLIT_NAMES or 'filename' not in image:
      raise ValueError(f'{path}: image {index} needs a "filename" and a '
                       f'"split" among {sorted(karpathy.SPLIT_NAMES)}.')
    out[image['filename']] = karpathy.SPLIT_NAMES[split]
  return out


def heldout_splits(names: list[str], heldout: int) -> dict[str, str]:
  """File name -> split: CRC32 order, `heldout` test, `heldout` validation."""
  if len(names) <= 2 * heldout:
    raise ValueError(
        f'flickr30k_token: {len(names)} captioned images cannot give '
        f'{heldout} test and {heldout} validation images and a train split; '
        f'add {KARPATHY_JSON} or use fewer held-out images.')
  order = sorted(names, key=lambda n: (zlib.crc32(n.encode('utf-8')), n))
  out = dict.fromkeys(order[2 * heldout:], 'train')
  out.update(dict.fromkeys(order[heldout:2 * heldout], 'validation'))
  out.update(dict.fromkeys(order[:heldout], 'test'))
  return out


class Flickr30kToken(photo_builder.PhotoCaptionBuilder):
  """Flickr30k photos with the 5 captions of `results_20130124.token`."""

  BUILDER_CONFIGS = [
      Flickr30kConfig(name='default', description='Photos stored as '
                      'released.'),
      Flickr30kConfig(name='min256', min_side=256, description='Photos '
                      'shrunk to a shorter side of 256 px.'),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  put the Flickr30k release there: results_20130124.token and the
  flickr30k-images/ folder (and Karpathy's dataset_flickr30k.json for his
  split).
  """

  def _split_entries(
      self, manual_dir: str) -> dict[str, list[photo_builder.PhotoEntry]]:
    token_path = photo_builder.find_file(
        manual_dir, [os.path.join(d, TOKEN_FILE) for d in TEXT_DIRS],
        TOKEN_FILE, 'flickr30k_token')
    captions = flickr8k.read_token_file(token_path, dataset='flickr30k_token')
    if not captions:
      raise ValueError(f'{token_path} has no caption lines '
                       '"<file>.jpg#<k>\\t<caption>".')
    image_dir = photo_builder.find_file(
        manual_dir, IMAGE_DIRS, 'photo folder', 'flickr30k_token')
    json_path = os.path.join(os.path.dirname(token_path), KARPATHY_JSON)
    if os.path.exists(json_path):
      splits = karpathy_splits(json_path)
      unlisted = sorted(set(captions) - set(splits))
      if unlisted:
        logging.warning('flickr30k_token: %d images of %s are not in %s and '
                        'are left out (first: %s).', len(unlisted),
                        token_path, json_path, unlisted[0])
    else:
      splits = heldout_splits(sorted(captions), self.builder_config.heldout)
    entries = {'train': [], 'validation': [], 'test': []}
    for name, split in sorted(splits.items()):
      path = os.path.join(image_dir, name)
      entries[split].append(photo_builder.PhotoEntry(
          image_id=image_id_of(name), path=path,
          file_name=os.path.relpath(path, manual_dir),
          captions=tuple(captions.get(name, ()))))
    return entries
