"""IAPR TC-12 and Wang's SIMPLIcity: the files the BiLSTM/m-RNN papers read.

IAPR TC-12 (Grubinger et al. 2006) annotates each photo in one `.eng` file
(latin-1, SGML-like, e.g. `annotations_complete_eng/01/1000.eng`)::

  <DOC>
  <DOCNO>annotations/01/1000.eng</DOCNO>
  <TITLE>Godchild ...</TITLE>
  <DESCRIPTION>a boy wearing a hat; a grey railing;</DESCRIPTION>
  ...
  <IMAGE>images/01/1000.jpg</IMAGE>
  </DOC>

The papers use the DESCRIPTION split into its clauses (at `;`) as the
sentences of the image. Standard train/test lists name images one a line
(`01/1000`, `images/01/1000.jpg` or `1000`). SIMPLIcity (Wang, Li and
Wiederhold 2001) is 1000 photos `0.jpg` .. `999.jpg`, class = id // 100.
"""

import dataclasses
import os
import re

ENCODING = 'latin-1'
SIMPLICITY_CLASSES = ('africa', 'beaches', 'buildings', 'buses', 'dinosaurs',
                      'elephants', 'flowers', 'horses', 'mountains', 'food')
SIMPLICITY_IMAGES = 1000
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


def read_split_list(path: str, annotations: dict[str, Annotation]
                    ) -> list[Annotation]:
  """The annotations a train/test list names, in its order.

  A bare number (`1000`) is looked up among the keys' numbers; a name with
  no annotation is a ValueError naming the list and the line.
  """
  by_number = {}
  for key in annotations:
    by_number.setdefault(key.split('/')[-1], []).append(key)
  out = []
  with open(path, encoding=ENCODING) as f:
    for line_number, line in enumerate(f, 1):
      if not line.strip():
        continue
      key = image_key(line)
      if key not in annotations and len(by_number.get(key, ())) == 1:
        key = by_number[key][0]
      if key not in annotations:
        raise ValueError(f'{path}:{line_number}: no annotation for image '
                         f'{line.strip()!r}.')
      out.append(annotations[key])
  return out


def simplicity_class(file_name: str) -> tuple[int, str]:
  """'314.jpg' -> (3, 'buses'); ValueError for a name outside 0..999."""
  stem = os.path.splitext(os.path.basename(file_name))[0]
  if not stem.isdigit() or int(stem) >= SIMPLICITY_IMAGES:
    raise ValueError(f'{file_name}: SIMPLIcity images are 0.jpg .. 999.jpg.')
  label = int(stem) // 100
  return label, SIMPLICITY_CLASSES[label]
