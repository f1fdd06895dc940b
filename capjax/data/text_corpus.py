"""Plain-text corpora for the character-level story model, and their batches.

A corpus is one string: a `.txt` file, a folder of `.txt` files (read in
sorted order, e.g. PersonaBank's `original/`), or built in, Flickr8k
paragraphs: each image's five captions as one paragraph that starts with
its top hashtag (`#dog A black dog runs on the grass. ...`), so that a story
can be seeded with a generated tag. Characters are ids of a `vocab.Vocab`
whose words are single characters (PAD, BOS, EOS, UNK first; characters by
descending count in the training text).

Training batches are fixed windows of `window + 1` characters:
  * `window_batches`: the windows at stride `window`, shuffled each epoch;
    global step s is a pure function of (seed, s);
  * `stream_batches`: for carrying the recurrent state across windows, the
    text is cut into `batch_size` contiguous streams and step s holds the
    next window of each; 'reset' marks the first window of an epoch.
"""

import collections
import functools
from collections.abc import Iterator
import glob
import os

import numpy as np

from capjax.data import flickr8k
from capjax.data import hashtags
from capjax.data import photo_builder
from capjax.data import vocab as vocab_lib


def read_text(path: str) -> str:
  """The text of a `.txt` file, or of a folder's `.txt` files in order.

  Raises:
    FileNotFoundError: nothing readable at `path` (named).
  """
  if os.path.isdir(path):
    files = sorted(glob.glob(os.path.join(path, '**', '*.txt'),
                             recursive=True))
    if not files:
      raise FileNotFoundError(f'Corpus folder {path} has no .txt files.')
    parts = []
    for name in files:
      with open(name, encoding='utf-8', errors='replace') as f:
        parts.append(f.read().strip())
    return '\n\n'.join(parts) + '\n'
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'No corpus at {path}: give a .txt file or a folder of .txt files '
        '(config key dataset.corpus).')
  with open(path, encoding='utf-8', errors='replace') as f:
    return f.read()


def clean_caption(caption: str) -> str:
  """'a dog runs on the grass .' -> 'A dog runs on the grass.'"""
  text = ' '.join(caption.split())
  for mark in ('.', ',', '!', '?', ';', ':'):
    text = text.replace(' ' + mark, mark)
  text = text.replace(" 's", "'s").replace(" n't", "n't")
  text = text.rstrip('.').strip()
  if not text:
    return ''
  return text[0].upper() + text[1:] + '.'


def paragraph(captions: list[str]) -> str:
  """One image's paragraph: its top hashtag, then its captions as prose."""
  tags = hashtags.caption_tags(captions)
  head = f'#{tags[0]} ' if tags else ''
  return head + ' '.join(c for c in map(clean_caption, captions) if c)


def flickr8k_paragraphs(manual_dir: str, split: str) -> list[str]:
  """The paragraphs of one official Flickr8k split, in list order.

  Args:
    manual_dir: the official Flickr8k text files (images not needed).
    split: 'train', 'validation' or 'test'.
  """
  def text_file(name):
    return photo_builder.find_file(
        manual_dir, [os.path.join(d, name) for d in flickr8k.TEXT_DIRS],
        name, 'flickr8k paragraphs')

  captions = flickr8k.read_token_file(text_file(flickr8k.TOKEN_FILE))
  names = flickr8k.read_split_file(text_file(flickr8k.SPLIT_FILES[split]))
  return [paragraph(captions[n]) for n in names if n in captions]


@functools.lru_cache(maxsize=2)
def open_corpus(corpus: str, manual_dir: str,
                heldout_chars: int) -> tuple[str, str, str]:
  """(train text, held-out text, description) of the configured corpus.

  Args:
    corpus: a file or folder ('' = Flickr8k paragraphs of manual_dir).
    manual_dir: Flickr8k text files (when corpus is '').
    heldout_chars: size of the held-out text. A file or folder holds out
      its last `heldout_chars` characters; Flickr8k its test split's first.

  The last two corpora read are kept in memory.
  """
  if corpus:
    text = read_text(corpus)
    if len(text) < 2 * heldout_chars:
      raise ValueError(
          f'Corpus {corpus} has {len(text)} characters; it needs at least '
          f'{2 * heldout_chars} (twice dataset.heldout_chars).')
    return text[:-heldout_chars], text[-heldout_chars:], corpus
  if not manual_dir:
    raise ValueError('Set dataset.corpus to a text file or folder, or '
                     'dataset.manual_dir to the Flickr8k text files.')
  train = '\n'.join(flickr8k_paragraphs(manual_dir, 'train')) + '\n'
  heldout = '\n'.join(flickr8k_paragraphs(manual_dir, 'test'))
  return train, heldout[:heldout_chars], f'flickr8k paragraphs of {manual_dir}'


def build_chars(text: str) -> vocab_lib.Vocab:
  """The character vocabulary of `text` (by descending count, then code)."""
  counts = collections.Counter(text)
  return vocab_lib.Vocab(sorted(counts, key=lambda c: (-counts[c], c)))


def encode(text: str, chars: vocab_lib.Vocab) -> np.ndarray:
  """[len(text)] int32 character ids (UNK for unseen characters)."""
  return np.fromiter((chars.word_id(c) for c in text), np.int32, len(text))


def decode(ids, chars: vocab_lib.Vocab) -> str:
  """Character ids -> text; special ids are left out."""
  words = chars.words
  return ''.join(words[i] for i in np.asarray(ids).reshape(-1).tolist()
                 if i >= len(vocab_lib.SPECIAL_TOKENS))


def unigram_bits(train: np.ndarray, heldout: np.ndarray,
                 vocab_size: int) -> float:
  """Bits per character of `heldout` under add-one unigram counts of `train`."""
  counts = np.bincount(train, minlength=vocab_size).astype(np.float64) + 1.0
  log2_probs = np.log2(counts / counts.sum())
  return float(-log2_probs[heldout].mean())


def _local_slice(batch_size: int, process_index: int,
                 process_count: int) -> slice:
  if batch_size % process_count:
    raise ValueError(f'batch_size {batch_size} is not a multiple of the '
                     f'{process_count} processes.')
  local = batch_size // process_count
  return slice(process_index * local, (process_index + 1) * local)


def window_batches(
    ids: np.ndarray, *, window: int, batch_size: int, seed: int,
    start_step: int = 0, process_index: int = 0, process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
  """Shuffled fixed windows, forever; step s is a pure function of (seed, s).

  Window w is `ids[w * window : w * window + window + 1]`; epoch e visits
  every window once in the order `default_rng([seed, e]).permutation`.

  Yields:
    {'tokens': [b, window + 1] int32}: this process's slice of global step
    start_step, start_step + 1, ... (b = batch_size // process_count).
  """
  count = (len(ids) - 1) // window
  if count < 1:
    raise ValueError(f'The corpus ({len(ids)} characters) is shorter than '
                     f'one window of {window + 1}.')
  rows = _local_slice(batch_size, process_index, process_count)
  offsets = np.arange(window + 1)
  orders = {}
  step = start_step
  while True:
    elements = np.arange(step * batch_size, (step + 1) * batch_size)[rows]
    epochs = elements // count
    windows = np.empty_like(elements)
    for i, (epoch, j) in enumerate(zip(epochs, elements % count)):
      if epoch not in orders:
        orders = {epoch: np.random.default_rng([seed, epoch]).permutation(
            count)}  # Keep one epoch's order: steps only move forward.
      windows[i] = orders[epoch][j]
    yield {'tokens': ids[windows[:, None] * window + offsets]}
    step += 1


def stream_batches(
    ids: np.ndarray, *, window: int, batch_size: int,
    start_step: int = 0, process_index: int = 0, process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
  """Consecutive windows of `batch_size` streams, for carrying the state.

  Stream r is `ids[r * L : (r + 1) * L]` with L = len(ids) // batch_size;
  step s holds window s mod E of every stream (E windows per epoch), so the
  state a step ends with is where the next step's text begins.

  Yields:
    {'tokens': [b, window + 1] int32, 'reset': [b] float32 (1 on the first
    window of an epoch: start from the zero state)}.
  """
  length = len(ids) // batch_size
  per_epoch = (length - 1) // window
  if per_epoch < 1:
    raise ValueError(f'The corpus ({len(ids)} characters) is too short for '
                     f'{batch_size} streams of one window of {window + 1}.')
  rows = np.arange(batch_size)[
      _local_slice(batch_size, process_index, process_count)]
  offsets = np.arange(window + 1)
  step = start_step
  while True:
    k = step % per_epoch
    starts = rows * length + k * window
    yield {'tokens': ids[starts[:, None] + offsets],
           'reset': np.full(len(rows), float(k == 0), np.float32)}
    step += 1
