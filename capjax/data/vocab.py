"""Caption vocabulary: words <-> ids, fixed-length encoding, JSON files.

Ids 0-3 are reserved (`PAD_ID`, `BOS_ID`, `EOS_ID`, `UNK_ID`); words follow
by descending count in the training captions, ties alphabetical, so the same
captions always give the same vocabulary. Text is split into words with
`capjax.metrics.tokenizer.tokenize` (lower case, punctuation dropped), the
same tokenizer the caption metrics use.

An encoded caption has `max_len + 1` ids::

  [BOS, w1, ..., wn, EOS, PAD, ..., PAD]

A caption of more than `max_len - 1` words keeps its first `max_len - 1`
words and still ends in EOS. A decoder is fed `tokens[:-1]` and predicts
`tokens[1:]` (both `max_len` long).
"""

from collections.abc import Iterable, Sequence
import collections
import hashlib
import json
import os

import numpy as np

from capjax import atomic_write
from capjax.metrics import tokenizer

PAD_ID = 0
BOS_ID = 1
EOS_ID = 2
UNK_ID = 3
SPECIAL_TOKENS = ('<pad>', '<bos>', '<eos>', '<unk>')
FILE_FORMAT = 'capjax.vocab'
FILE_VERSION = 1


class Vocab:
  """An immutable word list with encoding and decoding.

  Attributes:
    words: every token, index = id; the first four are SPECIAL_TOKENS.
  """

  def __init__(self, words: Sequence[str]):
    """Makes a vocabulary from its ordinary words (specials are added).

    Args:
      words: the words with ids 4, 5, ...; must be distinct and must not
        include the special tokens.
    """
    words = tuple(words)
    clashes = sorted(set(words) & set(SPECIAL_TOKENS))
    if clashes:
      raise ValueError(f'Vocabulary words clash with special tokens: {clashes}')
    self._words = SPECIAL_TOKENS + words
    self._ids = {w: i for i, w in enumerate(self._words)}
    if len(self._ids) != len(self.words):
      dupes = [w for w, c in collections.Counter(words).items() if c > 1]
      raise ValueError(f'Duplicate vocabulary words: {dupes[:10]}')

  @property
  def words(self) -> tuple[str, ...]:
    return self._words

  @classmethod
  def build(cls, captions: Iterable[str], min_count: int = 1) -> 'Vocab':
    """Builds the vocabulary of `captions` (use the training split only).

    Args:
      captions: raw caption strings.
      min_count: words seen fewer times are left out (they encode as UNK).

    Returns:
      A Vocab whose words are ordered by descending count, then
      alphabetically.
    """
    if min_count < 1:
      raise ValueError(f'min_count must be >= 1, got {min_count}.')
    counts = collections.Counter()
    for caption in captions:
      counts.update(tokenizer.tokenize(caption))
    kept = [w for w, c in counts.items() if c >= min_count]
    kept.sort(key=lambda w: (-counts[w], w))
    return cls([w for w in kept if w not in SPECIAL_TOKENS])

  def __len__(self) -> int:
    return len(self.words)

  def __eq__(self, other) -> bool:
    return isinstance(other, Vocab) and self.words == other.words

  def __hash__(self) -> int:
    return hash(self.words)

  def __repr__(self) -> str:
    return f'Vocab(size={len(self)}, fingerprint={self.fingerprint!r})'

  @property
  def fingerprint(self) -> str:
    """16 hex digits identifying the word list (same words <=> same print)."""
    text = json.dumps(self.words, ensure_ascii=False)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]

  def word_id(self, word: str) -> int:
    """The id of `word` (UNK_ID when unknown)."""
    return self._ids.get(word, UNK_ID)

  def encode(self, caption: str, max_len: int) -> np.ndarray:
    """Encodes one caption (see the module docstring for the layout).

    Args:
      caption: raw text; tokenized here.
      max_len: decoder length; the result has max_len + 1 ids.

    Returns:
      tokens: [max_len + 1] int32, `[BOS, w1..wn, EOS, PAD...]` with
      n <= max_len - 1.
    """
    if max_len < 1:
      raise ValueError(f'max_len must be >= 1, got {max_len}.')
    words = tokenizer.tokenize(caption)[:max_len - 1]
    tokens = np.full([max_len + 1], PAD_ID, np.int32)
    tokens[0] = BOS_ID
    tokens[1:len(words) + 1] = [self._ids.get(w, UNK_ID) for w in words]
    tokens[len(words) + 1] = EOS_ID
    return tokens

  def encode_batch(self, captions: Sequence[str], max_len: int) -> np.ndarray:
    """Encodes captions: [len(captions), max_len + 1] int32."""
    tokens = np.full([len(captions), max_len + 1], PAD_ID, np.int32)
    for row, caption in enumerate(captions):
      tokens[row] = self.encode(caption, max_len)
    return tokens

  def decode(self, ids: Iterable[int]) -> str:
    """Text of a token sequence, e.g. a decoder's output.

    Args:
      ids: [length] ids, with or without a leading BOS.

    Returns:
      The words up to the first EOS joined by spaces; PAD and BOS are
      skipped, UNK shows as '<unk>'.
    """
    words = []
    for token in np.asarray(ids).reshape(-1).tolist():
      if token == EOS_ID:
        break
      if token in (PAD_ID, BOS_ID):
        continue
      if not 0 <= token < len(self.words):
        raise ValueError(f'Token id {token} is outside the vocabulary '
                         f'(size {len(self.words)}).')
      words.append(self.words[token])
    return ' '.join(words)

  def to_json(self) -> dict:
    """A JSON-ready dict (what `save` writes; e.g. for checkpoint metadata)."""
    return {'format': FILE_FORMAT, 'version': FILE_VERSION,
            'fingerprint': self.fingerprint, 'words': list(self.words[4:])}

  @classmethod
  def from_json(cls, data: dict, origin: str = 'vocabulary data') -> 'Vocab':
    """Inverse of `to_json`; `origin` names the source in errors."""
    if not isinstance(data, dict) or data.get('format') != FILE_FORMAT:
      raise ValueError(f'{origin} is not a capjax vocabulary (no '
                       f'"format": "{FILE_FORMAT}").')
    if data.get('version') != FILE_VERSION:
      raise ValueError(f'{origin} has vocabulary version '
                       f'{data.get("version")}; this capjax reads version '
                       f'{FILE_VERSION}.')
    vocab = cls(data['words'])
    if data.get('fingerprint', vocab.fingerprint) != vocab.fingerprint:
      raise ValueError(f'{origin} is damaged: its words do not match its '
                       'fingerprint.')
    return vocab

  def save(self, path: str | os.PathLike) -> None:
    """Writes the vocabulary as JSON, atomically (temp file, then rename)."""
    atomic_write.write_json(path, self.to_json(), indent=0)

  @classmethod
  def load(cls, path: str | os.PathLike) -> 'Vocab':
    """Reads a vocabulary written by `save`.

    Raises:
      FileNotFoundError: no file at `path`.
      ValueError: the file is not a capjax vocabulary.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
      raise FileNotFoundError(f'No vocabulary file at {path}.')
    try:
      with open(path, encoding='utf-8') as f:
        data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise ValueError(f'{path} is not a capjax vocabulary (not JSON: {e}).'
                       ) from None
    return cls.from_json(data, origin=path)
