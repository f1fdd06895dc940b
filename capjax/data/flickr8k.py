"""Flickr8k from the files of its official release (TFDS builder, manual_dir).

`manual_dir` holds the release unchanged::

  Flickr8k.token.txt            <file>.jpg#<k>\\t<caption>, 5 per image
  Flickr_8k.trainImages.txt     one file name a line (6000 images)
  Flickr_8k.devImages.txt       (1000)
  Flickr_8k.testImages.txt      (1000)
  Flicker8k_Dataset/ or images/ the JPEG photos

(the text files may also sit in a `Flickr8k_text/` subfolder). Splits:
train, validation (the dev list) and test. A caption line whose key is not
`<name>.jpg#<k>` (the release has `2258277193_586949ec62.jpg.1#k`) is dropped
with a warning; a listed image without captions, missing, or corrupt is
skipped and counted (see `photo_builder`). `image_id` is the Flickr photo id
(the number before the `_` in the file name).
"""

import collections
import os
import re
import zlib

from absl import logging

from capjax.data import photo_builder

TOKEN_FILE = 'Flickr8k.token.txt'
SPLIT_FILES = {
    'train': 'Flickr_8k.trainImages.txt',
    'validation': 'Flickr_8k.devImages.txt',
    'test': 'Flickr_8k.testImages.txt',
}
TEXT_DIRS = ('', 'Flickr8k_text')
IMAGE_DIRS = ('Flicker8k_Dataset', 'Flickr8k_Dataset', 'images')
_KEY_RE = re.compile(r'^([^#\s/]+\.jpg)#(\d+)$')
_PHOTO_ID_RE = re.compile(r'^(\d+)_')
# Ids of names that do not start with a Flickr photo id: CRC32 + this.
FALLBACK_ID_OFFSET = 1 << 40


def image_id_of(file_name: str) -> int:
  """The Flickr photo id in `file_name`, else a stable id from its CRC32."""
  match = _PHOTO_ID_RE.match(file_name)
  if match:
    return int(match.group(1))
  return FALLBACK_ID_OFFSET + zlib.crc32(file_name.encode('utf-8'))


def read_token_file(path: str, dataset: str = 'flickr8k'
                    ) -> dict[str, list[str]]:
  """Captions by file name from `Flickr8k.token.txt`, bad keys dropped.

  Args:
    path: the token file (Flickr30k's `results_20130124.token` has the same
      format).
    dataset: the dataset named in warnings.

  Returns:
    file name -> its captions, in the order of their `#k` numbers.
  """
  captions = collections.defaultdict(list)
  bad_keys = collections.Counter()
  with open(path, encoding='utf-8') as f:
    for line_number, line in enumerate(f, start=1):
      line = line.rstrip('\r\n')
      if not line.strip():
        continue
      key, tab, caption = line.partition('\t')
      match = _KEY_RE.match(key)
      if not tab or not match or not caption.strip():
        bad_keys[key] += 1
        if bad_keys[key] == 1:
          logging.warning('%s: dropping caption line %d of %s with bad key '
                          '%r', dataset, line_number, path, key)
        continue
      captions[match.group(1)].append((int(match.group(2)), caption.strip()))
  if bad_keys:
    logging.warning('%s: dropped %d caption lines with %d bad keys from %s.',
                    dataset, sum(bad_keys.values()), len(bad_keys), path)
  return {name: [c for _, c in sorted(pairs)]
          for name, pairs in captions.items()}


def read_split_file(path: str) -> list[str]:
  """The file names listed in a split file, in order."""
  with open(path, encoding='utf-8') as f:
    return [line.strip() for line in f if line.strip()]


class Flickr8k(photo_builder.PhotoCaptionBuilder):
  """Flickr8k photos with 5 captions each, read from the official files."""

  BUILDER_CONFIGS = [
      photo_builder.PhotoConfig(
          name='default', description='Photos stored as released.'),
      photo_builder.PhotoConfig(
          name='min256', min_side=256,
          description='Photos shrunk to a shorter side of 256 px.'),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  put the official Flickr8k files there unchanged: Flickr8k.token.txt, the
  three Flickr_8k.*Images.txt split lists and the Flicker8k_Dataset/ (or
  images/) folder of photos.
  """

  def _split_entries(
      self, manual_dir: str) -> dict[str, list[photo_builder.PhotoEntry]]:
    def text_file(name):
      return photo_builder.find_file(
          manual_dir, [os.path.join(d, name) for d in TEXT_DIRS], name,
          'flickr8k')

    captions = read_token_file(text_file(TOKEN_FILE))
    image_dir = photo_builder.find_file(
        manual_dir, IMAGE_DIRS, 'photo folder', 'flickr8k')
    entries = {}
    for split, split_file in SPLIT_FILES.items():
      entries[split] = []
      for name in read_split_file(text_file(split_file)):
        # A listed image without captions is skipped and counted later.
        path = os.path.join(image_dir, name)
        entries[split].append(photo_builder.PhotoEntry(
            image_id=image_id_of(name), path=path,
            file_name=os.path.relpath(path, manual_dir),
            captions=tuple(captions.get(name, ()))))
    return entries
