"""Hashtags: tags from shapes scenes and from captions, tag-file readers.

A tag sequence is stored as a caption: tags without their `#`, separated by
spaces, in order (`'red circle two instagood'`), so the caption vocabulary,
pipelines and captioners read it unchanged; `with_hash` adds the `#` back for
display. Tags are normalised by `normalize_tag` (lower case, letters, digits
and `_` only), so the caption tokenizer keeps each tag one token.

Sources of tags:
  * `shapes_tags(scene, rng)`: the scene's colours, shapes and sizes and its
    object count, then frequent uninformative tags drawn with the skewed
    (Zipf) frequencies of social-media tags (`NOISE_TAGS`);
  * `caption_tags(captions)`: the content words that most of an image's
    captions share (Flickr8k);
  * `read_harrison(manual_dir)`: HARRISON's `data_list.txt` + `tag_list.txt`
    (+ `vocab_index.txt`);
  * `read_tags_tsv(path)`: `file<TAB>tag tag tag` lines.
`split_of(name, fractions)` gives a file a stable split when a dataset has
none.
"""

from collections.abc import Mapping, Sequence
import collections
import os
import re
import zlib
from typing import Any

import numpy as np

from capjax.data import stopwords
from capjax.metrics import tokenizer

SPLITS = ('train', 'validation', 'test')
# Uninformative tags of social media, most frequent first.
NOISE_TAGS = ('instagood', 'photooftheday', 'love', 'art', 'picoftheday',
              'nofilter', 'follow', 'beautiful')
COUNT_TAGS = ('zero', 'one', 'two', 'three', 'four', 'five', 'six')
_NOT_TAG_CHAR = re.compile(r'[^0-9a-z_]+')
_WORD = re.compile(r'^[a-z]+$')


def normalize_tag(tag: str) -> str:
  """'#Red-Car' -> 'redcar': lower case, no '#', only [0-9a-z_] kept."""
  return _NOT_TAG_CHAR.sub('', tag.lower().lstrip('#'))


def as_caption(tags: Sequence[str]) -> str:
  """Tags -> the stored caption: normalised, duplicates and empties dropped."""
  seen = []
  for tag in map(normalize_tag, tags):
    if tag and tag not in seen:
      seen.append(tag)
  return ' '.join(seen)


def with_hash(tags: str | Sequence[str]) -> str:
  """'red circle' or ['red', 'circle'] -> '#red #circle'."""
  if isinstance(tags, str):
    tags = tags.split()
  return ' '.join(f'#{t}' for t in tags)


def noise_probabilities(num: int, top: float, exponent: float) -> np.ndarray:
  """[num] float64: the chance of the rank-r noise tag, top / r**exponent."""
  return top / np.arange(1, num + 1, dtype=np.float64) ** exponent


def shapes_tags(
    scene: Mapping[str, Any], rng: np.random.Generator, *,
    noise_top: float = 0.6, noise_exponent: float = 1.0) -> list[str]:
  """The tags of a shapes scene.

  Objects left to right give their colour, shape and size (each tag once),
  then the count ('one', 'two', ...), then each of `NOISE_TAGS` independently
  with probability `noise_top / rank ** noise_exponent`.

  Args:
    scene: a `shapes_scenes` scene.
    rng: draws the noise tags.
    noise_top: probability of the most frequent noise tag.
    noise_exponent: Zipf exponent of the noise tags' frequencies.

  Returns:
    e.g. ['red', 'circle', 'small', 'blue', 'square', 'large', 'two',
    'instagood'].
  """
  objects = sorted(scene['objects'], key=lambda o: (o['bbox'][0], o['bbox'][1]))
  tags = []
  for obj in objects:
    for tag in (obj['colour'], obj['shape'], obj['size']):
      if tag not in tags:
        tags.append(tag)
  tags.append(COUNT_TAGS[len(objects)])
  draws = rng.random(len(NOISE_TAGS))
  probs = noise_probabilities(len(NOISE_TAGS), noise_top, noise_exponent)
  tags.extend(t for t, d, p in zip(NOISE_TAGS, draws, probs) if d < p)
  return tags


def _singular(word: str, words: set[str]) -> str:
  """'dogs' -> 'dog' when 'dog' is among `words` too, else the word."""
  if word.endswith('s') and word[:-1] in words:
    return word[:-1]
  return word


def caption_tags(
    captions: Sequence[str], *, min_share: float = 0.5, max_tags: int = 10,
    builtin_stopwords: bool = True) -> list[str]:
  """The content words that most of an image's captions share.

  Words are lower-cased tokens of letters only, stop words removed, a plural
  merged into its singular when both occur. A word is a tag when more than
  `min_share` of the captions use it; tags are ordered by how many captions
  use them, then by first use. An image where no word passes the bar gets
  its most shared word, so every image has at least one tag.

  Args:
    captions: the image's captions (raw text).
    min_share: a tag is in more than this share of the captions.
    max_tags: at most this many tags.
    builtin_stopwords: use capjax's stop words even if NLTK's are installed
      (a dataset then prepares the same everywhere).

  Returns:
    e.g. ['dog', 'grass', 'running'] (possibly empty only for no captions).
  """
  stop = stopwords.english(builtin_stopwords)
  per_caption = []
  for caption in captions:
    per_caption.append([w for w in tokenizer.tokenize(caption)
                        if _WORD.match(w) and w not in stop])
  vocabulary = {w for words in per_caption for w in words}
  used_by = collections.Counter()
  first_use = {}
  position = 0
  for words in per_caption:
    for word in dict.fromkeys(_singular(w, vocabulary) for w in words):
      used_by[word] += 1
      first_use.setdefault(word, position)
      position += 1
  if not used_by:
    return []
  ranked = sorted(used_by, key=lambda w: (-used_by[w], first_use[w]))
  tags = [w for w in ranked if used_by[w] > min_share * len(captions)]
  return (tags or ranked[:1])[:max_tags]


def split_of(name: str, fractions: Sequence[float]) -> str:
  """A stable split for a file name: 'train', 'validation' or 'test'.

  Args:
    name: the file's path as listed (the same on every machine).
    fractions: (train, validation, test) shares, summing to 1.

  Returns:
    The split, from the CRC32 of `name` (independent of list order).
  """
  point = zlib.crc32(name.encode('utf-8')) / 2**32
  edges = np.cumsum(fractions)
  return SPLITS[min(int(np.searchsorted(edges, point, side='right')), 2)]


def _read_lines(path: str) -> list[str]:
  with open(path, encoding='utf-8') as f:
    return [line.rstrip('\r\n') for line in f]


def read_vocab_index(path: str) -> set[str]:
  """HARRISON's `vocab_index.txt`: one tag a line, alone or with a number."""
  tags = set()
  for line in _read_lines(path):
    words = [w for w in line.replace(',', ' ').split() if not w.isdigit()]
    if words:
      tags.add(normalize_tag(words[0]))
  return tags


def read_harrison(manual_dir: str) -> list[tuple[str, list[str]]]:
  """(image path relative to manual_dir, tags) from HARRISON's released files.

  `data_list.txt` lists `instagram_dataset/<tag>/image_N.jpg` and the line
  of the same number of `tag_list.txt` its space-separated tags. When
  `vocab_index.txt` is there, tags outside it are dropped. Blank lines of
  data_list are skipped.

  Raises:
    FileNotFoundError: a list file is missing (named).
    ValueError: the two lists differ in length (both named).
  """
  paths = {}
  for name in ('data_list.txt', 'tag_list.txt'):
    paths[name] = os.path.join(manual_dir, name)
    if not os.path.isfile(paths[name]):
      raise FileNotFoundError(
          f'harrison: no {name} in {manual_dir}; put the released '
          'data_list.txt, tag_list.txt (and vocab_index.txt) there.')
  files = _read_lines(paths['data_list.txt'])
  tag_lines = _read_lines(paths['tag_list.txt'])
  while files and not files[-1].strip():
    files.pop()
  while tag_lines and not tag_lines[-1].strip():
    tag_lines.pop()
  if len(files) != len(tag_lines):
    raise ValueError(
        f'harrison: {paths["data_list.txt"]} has {len(files)} lines but '
        f'{paths["tag_list.txt"]} has {len(tag_lines)}; they must be '
        'line-aligned.')
  vocab_path = os.path.join(manual_dir, 'vocab_index.txt')
  known = read_vocab_index(vocab_path) if os.path.isfile(vocab_path) else None
  entries = []
  for file_name, line in zip(files, tag_lines):
    if not file_name.strip():
      continue
    tags = [normalize_tag(t) for t in line.split()]
    tags = [t for t in tags if t and (known is None or t in known)]
    entries.append((file_name.strip(), tags))
  return entries


def read_tags_tsv(path: str) -> list[tuple[str, list[str]]]:
  """(file, tags) from `file<TAB>tag tag tag` lines (blank lines skipped).

  Raises:
    ValueError: a line without a tab, naming the file and line.
  """
  entries = []
  for number, line in enumerate(_read_lines(path), start=1):
    if not line.strip():
      continue
    file_name, tab, tags = line.partition('\t')
    if not tab or not file_name.strip():
      raise ValueError(f'{path} line {number}: expected '
                       f'"file<TAB>tag tag ...", got {line[:60]!r}.')
    entries.append((file_name.strip(),
                    [t for t in map(normalize_tag, tags.split()) if t]))
  return entries
