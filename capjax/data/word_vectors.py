"""Pretrained word vectors (GloVe's text format) for a vocabulary's words.

A GloVe file holds one word a line: `word v1 v2 ... vd`, separated by single
spaces (`glove.6B.300d.txt`; `glove.840B.300d.txt` is 5 GB and has a few
words that contain spaces). `read_rows` streams it once and parses only the
lines of the words it is asked for, so memory holds the vocabulary's rows,
never the file. A word of the vocabulary takes the vector of the same word,
else of its first case-insensitive match (the 840B files are cased; capjax's
vocabularies are lower case). A line whose word has spaces is read by
taking its last `dim` fields as the vector.
"""

import os
import sys

import numpy as np

from capjax import progress

REPORT_EVERY_BYTES = 1 << 26  # progress line every 64 MB read


def _error(path: str, what: str) -> ValueError:
  return ValueError(f'model.embedding_init={path!r}: {what}')


def read_rows(
    path: str, words: tuple[str, ...], dim: int, *,
    dim_key: str = 'model.embed_dim', stream=None,
) -> tuple[np.ndarray, np.ndarray]:
  """The vectors of `words` from a GloVe-format text file.

  Args:
    path: the text file.
    words: [V] the vocabulary, index = id.
    dim: the width the model's embedding has (checked against the file).
    dim_key: the config key that sets `dim`, for the error message.
    stream: where the progress line goes (default stderr).

  Returns:
    rows: [V, dim] float32, zeros where a word is missing;
    found: [V] bool, whether the file has the word.

  Raises:
    FileNotFoundError: no file at `path`.
    ValueError (one line): an empty file, a vector of another width than
      `dim` (naming both and the file), or a line that is not a word and
      numbers (naming its number).
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'model.embedding_init={path!r}: no such file; give a GloVe-format '
        "text file ('word v1 ... vd' per line) or '' for a random init.")
  wanted = {}
  for index, word in enumerate(words):
    wanted.setdefault(word, index)
  lower = {w.lower(): i for w, i in reversed(wanted.items())}
  rows = np.zeros([len(words), dim], np.float32)
  exact = np.zeros([len(words)], bool)
  folded = np.zeros([len(words)], bool)

  def slot(word: str) -> tuple[int, bool] | None:
    """(row, found by case folding) of a word still to be filled, or None."""
    index = wanted.get(word)
    if index is not None:
      return None if exact[index] else (index, False)
    index = lower.get(word.lower())
    if index is None or exact[index] or folded[index]:
      return None
    return index, True

  size = os.path.getsize(path)
  bar = progress.Progress(max(size >> 20, 1), unit='MB',
                          stream=stream or sys.stderr, every_s=2.0)
  read = reported = 0
  file_dim = None
  with open(path, 'rb') as f:
    for number, raw in enumerate(f, start=1):
      read += len(raw)
      if read - reported >= REPORT_EVERY_BYTES:
        bar.update((read >> 20) - (reported >> 20))
        reported = read
      line = raw.decode('utf-8', errors='replace').rstrip('\r\n')
      if file_dim is None:  # the first line fixes the file's width
        file_dim = _first_width(path, line, dim, dim_key)
      if slot(line.split(' ', 1)[0]) is None:  # most lines: not parsed
        continue
      fields = line.rstrip(' ').split(' ')
      if len(fields) > dim + 1:  # a word with spaces (glove.840B's '. . .')
        fields = [' '.join(fields[:-dim])] + fields[-dim:]
      found = slot(fields[0])
      if found is None:
        continue
      if len(fields) != dim + 1:
        raise _error(path, f'line {number} has {len(fields) - 1} numbers '
                     f'after {fields[0]!r}, the file\'s first line '
                     f'{file_dim}.')
      index, case_folded = found
      try:
        rows[index] = np.asarray(fields[1:], np.float32)
      except ValueError:
        raise _error(path, f'line {number} is not a word and {dim} numbers '
                     '(a damaged file?).') from None
      (folded if case_folded else exact)[index] = True
  if file_dim is None:
    raise _error(path, 'the file is empty.')
  bar.done = bar.total
  bar.close()
  return rows, exact | folded


def _first_width(path: str, line: str, dim: int, dim_key: str) -> int:
  """The vector width of a GloVe file's first line (a one-line error)."""
  fields = line.rstrip(' ').split(' ')
  try:
    np.asarray(fields[1:], np.float32)
  except ValueError:
    raise _error(path, 'line 1 is not a word and numbers; is this a GloVe '
                 "text file ('word v1 ... vd' per line)?") from None
  width = len(fields) - 1
  if width != dim:
    raise _error(path, f'its vectors have {width} numbers but the model\'s '
                 f'word embedding has {dim} ({dim_key}): set '
                 f'{dim_key}={width} or use a {dim}-d file.')
  return width
