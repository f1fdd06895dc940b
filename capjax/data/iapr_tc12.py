"""IAPR TC-12 (Grubinger et al. 2006): its `.eng` files and TFDS builder.

Each photo is annotated in one `.eng` file (latin-1, SGML-like, e.g.
`annotations_complete_eng/01/1000.eng`)::

  <DOC>
  <DOCNO>annotations/01/1000.eng</DOCNO>
  <TITLE>Godchild ...</TITLE>
  <DESCRIPTION>a boy wearing a hat; a grey railing;</DESCRIPTION>
  <NOTES>...</NOTES> <LOCATION>...</LOCATION> <DATE>...</DATE>
  <IMAGE>images/01/1000.jpg</IMAGE>
  <THUMBNAIL>thumbnails/01/1000.jpg</THUMBNAIL>
  </DOC>

The m-RNN paper uses the DESCRIPTION split into its clauses (at `;`) as the
sentences of the image: they are its captions here. `manual_dir` holds the
release (`images/NN/NNNN.jpg`, `annotations_complete_eng/NN/NNNN.eng`, also
accepted one level down in `iaprtc12/`) and, optionally, the standard
train/test lists of Guillaumin et al. 2009 that m-RNN and Kiros et al. use
(`iaprtc12_train_list.txt`, 17,665 images, `iaprtc12_test_list.txt`, 1,962;
one image a line, `01/1000`; `images/01/1000.jpg` or `1000` also read),
beside the release or in `iaprtc12.20091111/`. Splits:
  train, test: the lists when given; without lists, a deterministic
    TEST_FRACTION of all annotated images is the test split;
  validation: `iaprtc12_val_list.txt` when given, else a deterministic
    VALIDATION_FRACTION of train (about 883 of the 17,665 images), taken out
    of train; config `full_train` keeps all of train (m-RNN's 17,665) and
    has no validation split (set eval.validation_split='').
Deterministic carving orders the images by the CRC32 of their key `NN/NNNN`
(then the key) and takes the first ones: the same images on every machine,
whatever the listing order. `image_id` is the image's number (`1000`); if
two folders held the same number, it would be NN * 100000 + number for all.
"""

import dataclasses
import os
import re
import zlib

from absl import logging

from capjax.data import photo_builder

ENCODING = 'latin-1'
ANNOTATION_DIR = 'annotations_complete_eng'
IMAGE_DIR = 'images'
RELEASE_DIRS = ('', 'iaprtc12')  # where the release may sit in manual_dir
LIST_DIRS = ('', 'iaprtc12', 'iaprtc12.20091111')  # where the lists may sit
LIST_FILES = {
    'train': 'iaprtc12_train_list.txt',
    'validation': 'iaprtc12_val_list.txt',
    'test': 'iaprtc12_test_list.txt',
}
# Without lists: the share of all images in test (the standard 1962/19627).
TEST_FRACTION = 0.1
# Without a validation list: the share of train held out for validation.
VALIDATION_FRACTION = 0.05
# Image ids when an image number repeats across folders: NN * this + number.
FOLDER_ID_STRIDE = 100_000
_ELEMENT_RE = r'<{0}>(.*?)</{0}>'
_KEY_RE = re.compile(r'(?:^|/)(\d+)/(\d+)(?:\.\w+)?$')


@dataclasses.dataclass(frozen=True)
class Annotation:
  """One IAPR TC-12 image."""

  key: str  # 'DD/NNNN', the image's folder and number
  image: str  # the IMAGE element, e.g. 'images/01/1000.jpg'
  title: str
  clauses: tuple[str, ...]  # DESCRIPTION split at ';', stripped, non-empty


def _element(text: str, name: str, path: str, required: bool = True) -> str:
  match = re.search(_ELEMENT_RE.format(name), text, re.DOTALL)
  if match is None:
    if required:
      raise ValueError(f'{path}: no <{name}> element; is it an IAPR TC-12 '
                       '.eng annotation?')
    return ''
  return ' '.join(match.group(1).split())


def image_key(name: str) -> str:
  """'images/01/1000.jpg' or '01/1000' -> '01/1000'; '1000' stays '1000'."""
  name = name.strip().replace('\\', '/')
  match = _KEY_RE.search(name)
  if match:
    return f'{match.group(1)}/{match.group(2)}'
  return os.path.splitext(os.path.basename(name))[0]


def read_annotation(path: str) -> Annotation:
  """Parses one `.eng` file (latin-1); ValueError naming it when malformed."""
  with open(path, encoding=ENCODING) as f:
    text = f.read()
  image = _element(text, 'IMAGE', path)
  description = _element(text, 'DESCRIPTION', path)
  clauses = tuple(c.strip() for c in description.split(';') if c.strip())
  return Annotation(key=image_key(image), image=image,
                    title=_element(text, 'TITLE', path, required=False),
                    clauses=clauses)


def read_annotations(folder: str) -> dict[str, Annotation]:
  """Every `.eng` file under `folder` (recursively), by image key."""
  out = {}
  for root, _, files in os.walk(folder):
    for name in sorted(files):
      if name.endswith('.eng'):
        annotation = read_annotation(os.path.join(root, name))
        out[annotation.key] = annotation
  if not out:
    raise ValueError(f'No IAPR TC-12 .eng annotation files under {folder}.')
  return out


def read_split_list(path: str, annotations: dict[str, Annotation],
                    missing_ok: bool = False) -> list[Annotation]:
  """The annotations a train/test list names, in its order.

  A bare number (`1000`) is looked up among the keys' numbers. A name with
  no annotation is a ValueError naming the list and the line, unless
  `missing_ok`: then it stands as an Annotation without clauses (its image
  is skipped and counted when the dataset is prepared; the release lacks a
  few), with a warning; a list most of whose names have no annotation is
  still a ValueError (a list of another collection).
  """
  by_number = {}
  for key in annotations:
    by_number.setdefault(key.split('/')[-1], []).append(key)
  out, unknown = [], []
  with open(path, encoding=ENCODING) as f:
    for line_number, line in enumerate(f, 1):
      if not line.strip():
        continue
      key = image_key(line)
      if key not in annotations and len(by_number.get(key, ())) == 1:
        key = by_number[key][0]
      if key in annotations:
        out.append(annotations[key])
        continue
      where = f'{path}:{line_number}: no annotation for image {line.strip()!r}'
      if not missing_ok:
        raise ValueError(where + '.')
      unknown.append(where)
      out.append(Annotation(key=key, image=f'{IMAGE_DIR}/{key}.jpg',
                            title='', clauses=()))
  if unknown and 2 * len(unknown) > len(out):
    raise ValueError(f'{unknown[0]}, nor for {len(unknown) - 1} more of its '
                     f'{len(out)} images: is it a list of this collection?')
  if unknown:
    logging.warning('iapr_tc12: %d images of %s have no annotation and are '
                    'skipped (first: %s).', len(unknown), path, unknown[0])
  return out


def carve(annotations: list[Annotation], fraction: float
          ) -> tuple[list[Annotation], list[Annotation]]:
  """Splits off a deterministic `fraction` of `annotations` (at least one).

  The images are ordered by the CRC32 of their key (then the key) and the
  first round(fraction * N) are held out; both parts keep the input order.

  Returns:
    (the rest, the held-out part).
  """
  if len(annotations) < 2 or fraction <= 0:
    return list(annotations), []
  count = min(len(annotations) - 1,
              max(1, round(fraction * len(annotations))))
  order = sorted(annotations,
                 key=lambda a: (zlib.crc32(a.key.encode('utf-8')), a.key))
  held = {a.key for a in order[:count]}
  return ([a for a in annotations if a.key not in held],
          [a for a in annotations if a.key in held])


def image_ids(keys: list[str]) -> dict[str, int]:
  """Key 'NN/NNNN' -> its int image id.

  The id is the number, or NN * FOLDER_ID_STRIDE + number for every key
  when a number repeats across folders; a non-numeric key gets its CRC32.
  """
  def parts(key):
    folder, _, number = key.rpartition('/')
    if number.isdigit() and (not folder or folder.isdigit()):
      return int(folder or 0), int(number)
    return None, zlib.crc32(key.encode('utf-8'))

  numbers = [parts(k)[1] for k in keys]
  unique = len(set(numbers)) == len(numbers)
  out = {}
  for key in keys:
    folder, number = parts(key)
    out[key] = (number if unique or folder is None
                else folder * FOLDER_ID_STRIDE + number)
  return out


def find_release(manual_dir: str) -> str:
  """The folder of `manual_dir` holding `annotations_complete_eng/`."""
  for release in RELEASE_DIRS:
    root = os.path.join(manual_dir, release)
    if os.path.isdir(os.path.join(root, ANNOTATION_DIR)):
      if not os.path.isdir(os.path.join(root, IMAGE_DIR)):
        raise FileNotFoundError(
            f'iapr_tc12: no {IMAGE_DIR}/ folder beside {ANNOTATION_DIR}/ in '
            f'{os.path.normpath(root)}; unpack the whole IAPR TC-12 release '
            'there.')
      return root
  raise FileNotFoundError(
      f'iapr_tc12: no {ANNOTATION_DIR}/ folder in {manual_dir} (looked in '
      f'{", ".join(os.path.join(d, ANNOTATION_DIR) for d in RELEASE_DIRS)});'
      ' unpack the IAPR TC-12 release (iaprtc12.tgz) there.')


def find_lists(manual_dir: str) -> dict[str, str]:
  """Split name -> path of each standard list found in `manual_dir`."""
  found = {}
  for split, name in LIST_FILES.items():
    for folder in LIST_DIRS:
      path = os.path.join(manual_dir, folder, name)
      if os.path.isfile(path):
        found[split] = path
        break
  if ('train' in found) != ('test' in found):
    have, lack = (('train', 'test') if 'train' in found
                  else ('test', 'train'))
    raise FileNotFoundError(
        f'iapr_tc12: found {found[have]} but no {LIST_FILES[lack]} beside '
        'it; give both standard lists or neither.')
  return found


def split_annotations(
    annotations: dict[str, Annotation], lists: dict[str, str],
    validation_fraction: float = VALIDATION_FRACTION,
) -> dict[str, list[Annotation]]:
  """'train' / 'validation' / 'test' -> annotations (see module docstring).

  Args:
    annotations: every image, by key.
    lists: split -> list file (`find_lists`).
    validation_fraction: share of train carved out without a validation
      list (0: none, validation stays empty).
  """
  if 'train' in lists:
    train = read_split_list(lists['train'], annotations, missing_ok=True)
    test = read_split_list(lists['test'], annotations, missing_ok=True)
  else:
    train, test = carve([annotations[k] for k in sorted(annotations)],
                        TEST_FRACTION)
  if 'validation' in lists:
    validation = read_split_list(lists['validation'], annotations,
                                 missing_ok=True)
    held = {a.key for a in validation}
    train = [a for a in train if a.key not in held]
  else:
    train, validation = carve(train, validation_fraction)
  return {'train': train, 'validation': validation, 'test': test}


@dataclasses.dataclass(eq=False)
class IaprConfig(photo_builder.PhotoConfig):
  """A variant of IAPR TC-12.

  Attributes:
    validation_fraction: share of train carved out as validation when no
      validation list is given (0: no validation split).
  """

  validation_fraction: float = VALIDATION_FRACTION


class IaprTc12(photo_builder.PhotoCaptionBuilder):
  """IAPR TC-12 photos; the clauses of each DESCRIPTION are its captions."""

  BUILDER_CONFIGS = [
      IaprConfig(name='default', description='Validation carved from train '
                 '(5%).'),
      IaprConfig(name='full_train', validation_fraction=0.0,
                 description="m-RNN's 17,665 train / 1,962 test, no "
                 'validation split.'),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  unpack the IAPR TC-12 release there (images/NN/NNNN.jpg and
  annotations_complete_eng/NN/NNNN.eng), with the standard lists
  iaprtc12_train_list.txt and iaprtc12_test_list.txt if you have them.
  """

  def _split_entries(
      self, manual_dir: str) -> dict[str, list[photo_builder.PhotoEntry]]:
    root = find_release(manual_dir)
    annotations = read_annotations(os.path.join(root, ANNOTATION_DIR))
    lists = find_lists(manual_dir)
    if 'train' not in lists:
      logging.warning(
          'iapr_tc12: no standard lists (%s) in %s; carving test (%.0f%%) '
          'from all images deterministically.', LIST_FILES['train'],
          manual_dir, 100 * TEST_FRACTION)
    splits = split_annotations(annotations, lists,
                               self.builder_config.validation_fraction)
    ids = image_ids(sorted(
        set(annotations) | {a.key for v in splits.values() for a in v}))
    entries = {}
    for split, members in splits.items():
      entries[split] = []
      for annotation in members:
        path = os.path.join(root, annotation.image)
        if not os.path.exists(path):  # an IMAGE element of another layout
          path = os.path.join(root, IMAGE_DIR, annotation.key + '.jpg')
        entries[split].append(photo_builder.PhotoEntry(
            image_id=ids[annotation.key], path=path,
            file_name=os.path.relpath(path, manual_dir),
            captions=annotation.clauses))
    return entries
