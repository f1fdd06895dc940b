"""The COCO toolkit's PTB tokenization of a whole split at once.

The toolkit runs the jar once over every caption of a split, one caption per
line. Most captions are letters, spaces, commas and a final period: they are
tokenized together on one joined string, and NumPy over the UTF-8 bytes finds
the others, which go through `tokenizer.ptb_tokenize` with the lines that
follow them (an abbreviation that ends a caption looks ahead into the next).
"""

import contextlib
import gc
from typing import Iterator, Sequence

import numpy as np

from capjax.metrics import ptb_rules
from capjax.metrics import tokenizer

# Bytes a simple caption may hold: letters, space, comma, period, newline.
_SIMPLE_BYTE = np.zeros(256, bool)
_SIMPLE_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ,.\n'
_SIMPLE_BYTE[[ord(c) for c in _SIMPLE_CHARS]] = True


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
  """Pauses the cyclic garbage collector while many small lists are built.

  Building hundreds of thousands of token lists triggers collections that
  find nothing (lists of strings form no cycles) yet cost a third of the
  time; the collector's previous state is restored on exit.
  """
  was_enabled = gc.isenabled()
  gc.disable()
  try:
    yield
  finally:
    if was_enabled:
      gc.enable()


def _lines_needing_lexer(
    joined: str, simple_tokens: list[list[str]]) -> list[int]:
  """Indices of the lines of `joined` that the simple path gets wrong.

  A line leaves the simple path when it holds a byte other than letters,
  spaces, commas and periods, a period that does not end it, a final period
  after a one-letter word or a listed abbreviation, or a word the lexer
  splits (cannot, gonna, ...). All tests but the last word's run in NumPy over
  the UTF-8 bytes.

  Args:
    joined: the captions joined by newlines.
    simple_tokens: [num_lines] the simple path's tokens of each line.

  Returns:
    Sorted line indices.
  """
  raw = joined.encode('utf-8')
  data = np.frombuffer(raw, np.uint8)
  newlines = np.flatnonzero(data == 10)
  slow = [np.flatnonzero(~_SIMPLE_BYTE[data])]
  periods = np.flatnonzero(data == 46)
  if periods.size:
    nonspace = np.flatnonzero(data != 32)
    nxt = np.searchsorted(nonspace, periods + 1)
    after = np.full(periods.shape, 10, np.uint8)
    inside = nxt < nonspace.size
    after[inside] = data[nonspace[nxt[inside]]]
    slow.append(periods[after != 10])
    final_lines = np.unique(np.searchsorted(newlines, periods[after == 10]))
  else:
    final_lines = np.zeros(0, np.int64)
  lowered = raw.lower()
  for word in ptb_rules.ASSIMILATIONS:
    at = lowered.find(word.encode())
    while at >= 0:
      slow.append(np.array([at]))
      at = lowered.find(word.encode(), at + 1)
  lines = set(np.searchsorted(newlines, np.concatenate(slow)).tolist())
  for i in final_lines.tolist():
    words = simple_tokens[i]
    if words and (len(words[-1]) == 1 or
                  words[-1] in ptb_rules.ABBREVIATIONS_LOWER):
      lines.add(i)
  return sorted(lines)


def tokenize_batch(texts: Sequence[str]) -> list[list[str]]:
  """Tokenizes captions as the toolkit does when they are one jar input.

  The texts are the consecutive lines of one stream, so a caption that ends
  with an abbreviation sees the start of the next one, exactly as in the
  toolkit's single Java call. Captions made of letters, spaces, commas and a
  final period are tokenized together on one joined string; the others go
  through the lexer.

  Args:
    texts: [num_captions] captions, in the toolkit's order.

  Returns:
    [num_captions] token lists (see `tokenize`).
  """
  with gc_paused():
    return _tokenize_batch(texts)


def _tokenize_batch(texts: Sequence[str]) -> list[list[str]]:
  texts = [text.replace('\n', ' ') for text in texts]
  if not texts:
    return []
  joined = '\n'.join(texts)
  simple = joined.lower().replace(',', ' ').replace('.', ' ').split('\n')
  out = [line.split() for line in simple]
  for i in _lines_needing_lexer(joined, out):
    following = '\n'.join(texts[i + 1:i + 4]) if i + 1 < len(texts) else None
    tokens = tokenizer.ptb_tokenize(texts[i], following)
    out[i] = tokenizer.toolkit_tokens(tokens)
  return out
