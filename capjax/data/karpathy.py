"""Karpathy-split caption datasets (COCO, Flickr30k, Flickr8k) from a JSON file.

The JSON is the `dataset_<name>.json` of Karpathy and Fei-Fei's release::

  {"images": [{"filepath": "val2014",            (COCO only)
               "filename": "COCO_val2014_000000391895.jpg",
               "split": "train" | "restval" | "val" | "test",
               "cocoid": 391895, "imgid": 0,
               "sentences": [{"raw": "A man ...", "tokens": [...]}, ...]},
              ...]}

`manual_dir` holds that file and the photos, found at
`<manual_dir>/<image dir>/<filepath>/<filename>` for the first image dir of
the config's list where the file exists (e.g. `coco`: `''` or `images`, so
`manual_dir/val2014/COCO_val2014_...jpg` works). Splits: train (with restval
when `restval_to_train`), validation (val) and test. `image_id` is `cocoid`
when present (COCO), else `imgid`. Photos with no non-empty caption, missing
or corrupt are skipped and counted (see `photo_builder`).
"""

import dataclasses
import json
import os

from capjax.data import photo_builder

SPLIT_NAMES = {'train': 'train', 'restval': 'train', 'val': 'validation',
               'test': 'test'}


@dataclasses.dataclass(eq=False)
class KarpathyConfig(photo_builder.PhotoConfig):
  """Which JSON file to read and where its photos live.

  Attributes:
    json_file: file name of the Karpathy JSON inside manual_dir.
    image_dirs: folders (relative to manual_dir) to look for photos in.
    restval_to_train: put the 'restval' images in train (else drop them).
  """

  json_file: str = 'dataset_coco.json'
  image_dirs: tuple[str, ...] = ('', 'images')
  restval_to_train: bool = True


CONFIGS = {
    'coco': KarpathyConfig(
        name='coco', json_file='dataset_coco.json',
        image_dirs=('', 'images', 'coco'),
        description='COCO 2014 in the Karpathy split (113287/5000/5000).'),
    'flickr30k': KarpathyConfig(
        name='flickr30k', json_file='dataset_flickr30k.json',
        image_dirs=('flickr30k-images', 'images', ''),
        description='Flickr30k in the Karpathy split (29000/1014/1000).'),
    'flickr8k': KarpathyConfig(
        name='flickr8k', json_file='dataset_flickr8k.json',
        image_dirs=('Flicker8k_Dataset', 'images', ''),
        description='Flickr8k in the Karpathy split (6000/1000/1000).'),
}


def _field(image: dict, key: str, index: int, path: str):
  if key not in image:
    raise ValueError(f'{path}: image {index} has no "{key}".')
  return image[key]


def read_karpathy_json(
    path: str, manual_dir: str, config: KarpathyConfig
) -> dict[str, list[photo_builder.PhotoEntry]]:
  """Reads a Karpathy JSON into per-split entries.

  Args:
    path: the JSON file.
    manual_dir: the folder that photo paths are relative to.
    config: the dataset variant (image folders, restval handling).

  Returns:
    'train' / 'validation' / 'test' -> entries, in the JSON's order.
  """
  try:
    with open(path, encoding='utf-8') as f:
      data = json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f'{path} is not valid JSON: {e}.') from None
  if not isinstance(data, dict) or not isinstance(data.get('images'), list):
    raise ValueError(f'{path} has no "images" list; expected a Karpathy '
                     'dataset_*.json.')
  entries = {'train': [], 'validation': [], 'test': []}
  for index, image in enumerate(data['images']):
    split = _field(image, 'split', index, path)
    if split not in SPLIT_NAMES:
      raise ValueError(f'{path}: image {index} has unknown split {split!r} '
                       f'(expected one of {sorted(SPLIT_NAMES)}).')
    if split == 'restval' and not config.restval_to_train:
      continue
    file_name = os.path.join(image.get('filepath', ''),
                             _field(image, 'filename', index, path))
    candidates = [os.path.join(manual_dir, d, file_name)
                  for d in config.image_dirs]
    found = next((c for c in candidates if os.path.exists(c)), candidates[0])
    image_id = image['cocoid'] if 'cocoid' in image else _field(
        image, 'imgid', index, path)
    captions = tuple(  # none: the image is skipped and counted
        c for c in (s.get('raw') or ' '.join(s.get('tokens', []))
                    for s in _field(image, 'sentences', index, path))
        if c.strip())
    entries[SPLIT_NAMES[split]].append(photo_builder.PhotoEntry(
        image_id=int(image_id), path=found,
        file_name=os.path.relpath(found, manual_dir), captions=captions))
  return entries


class KarpathyCaptions(photo_builder.PhotoCaptionBuilder):
  """Photos and captions listed by a Karpathy-split JSON file."""

  BUILDER_CONFIGS = list(CONFIGS.values())
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  put the Karpathy-split JSON (e.g. dataset_coco.json) there with the photo
  folders it names (e.g. train2014/ and val2014/ for COCO).
  """

  def _split_entries(
      self, manual_dir: str) -> dict[str, list[photo_builder.PhotoEntry]]:
    config = self.builder_config
    path = photo_builder.find_file(
        manual_dir, [config.json_file], 'Karpathy JSON', self.name)
    return read_karpathy_json(path, manual_dir, config)
