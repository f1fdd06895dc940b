"""N-gram statistics of candidate and reference captions, with NumPy.

BLEU and CIDEr-D both need, for every image, how often each n-gram occurs in
its candidate and in each of its references. `build` computes all of it with
one stable sort over integer n-gram codes instead of per-caption dictionaries:

- tokens become ids 1..V (0 is padding), and an n-gram becomes the base-(V+1)
  number of its ids, so n-grams of different orders never share a code;
- captions are laid out image by image, candidate first, so after a stable
  sort by code the occurrences of one n-gram are grouped by image and, inside
  an image, by caption;
- runs of equal (code, caption) are the term frequencies, and runs of equal
  (code, image) hold the candidate's count and each reference's count.

Tokens are split on whitespace as the toolkit's `str.split()` does, so a
fraction token such as '25\u00a01/2' counts as two words here.
"""

import dataclasses
import itertools
from typing import Sequence

import numpy as np

MAX_N = 4
# Base-(V+1) codes of 4-grams must fit in int64.
_MAX_VOCAB = 55_000


@dataclasses.dataclass(frozen=True)
class Vocabulary:
  """Word -> id (1-based) map that n-gram codes are written in."""
  ids: dict[str, int]

  @property
  def base(self) -> int:
    return len(self.ids) + 1


@dataclasses.dataclass(frozen=True)
class NgramTable:
  """N-gram occurrences of an evaluation set, grouped for BLEU and CIDEr.

  Captions are numbered image by image: caption `first[i]` is the candidate of
  image i and captions `first[i] + 1 .. first[i + 1] - 1` its references.
  """
  num_images: int
  max_n: int
  vocab: Vocabulary
  words: 'EncodedCaptions'  # the captions' word ids (both splits)
  first: np.ndarray  # [num_images + 1] int64 first caption of each image
  lengths: np.ndarray  # [num_captions] int64 words per caption
  caption_image: np.ndarray  # [num_captions] int64 image of each caption
  is_candidate: np.ndarray  # [num_captions] bool
  # One entry per distinct (n-gram, caption), sorted by n-gram then caption.
  entry_code: np.ndarray  # [num_entries] int64 n-gram code
  entry_order: np.ndarray  # [num_entries] int64 n - 1
  entry_caption: np.ndarray  # [num_entries] int64
  entry_count: np.ndarray  # [num_entries] int64 term frequency
  entry_group: np.ndarray  # [num_entries] int64 its (n-gram, image) group
  # One group per distinct (n-gram, image).
  group_start: np.ndarray  # [num_groups] int64 first entry of the group
  group_image: np.ndarray  # [num_groups] int64
  group_order: np.ndarray  # [num_groups] int64 n - 1
  group_candidate_count: np.ndarray  # [num_groups] int64 (0 if absent)
  group_reference_max: np.ndarray  # [num_groups] int64 max over references
  group_ngram: np.ndarray  # [num_groups] int64 dense id of its n-gram


def split_words(captions: Sequence[Sequence[str]]) -> list[list[str]]:
  """Re-splits tokens that hold whitespace, as `' '.join(t).split()` does."""
  out = []
  for tokens in captions:
    if any(not token or token.split() != [token] for token in tokens):
      tokens = ' '.join(tokens).split()
    out.append(list(tokens))
  return out


@dataclasses.dataclass(frozen=True)
class EncodedCaptions:
  """Captions as word ids, split two ways (they differ only in rare cases)."""
  ids: np.ndarray  # [num_words] int64, split like `str.split()` (BLEU, CIDEr)
  offsets: np.ndarray  # [num_captions + 1] int64
  space_ids: np.ndarray  # [num_space_words] int64, split like `split(' ')`
  space_offsets: np.ndarray  # [num_captions + 1] int64
  vocab: Vocabulary


def encode_captions(captions: Sequence[Sequence[str]],
                    vocab: dict[str, int] | None = None) -> EncodedCaptions:
  """Word ids of tokenized captions, as the toolkit's scorers split them.

  The toolkit joins tokens with spaces; BLEU and CIDEr split that with
  `str.split()`, ROUGE-L with `split(' ')`. They differ only for a token that
  holds whitespace (the jar's '25\u00a01/2') and for an empty caption, which
  ROUGE-L sees as one empty word.

  Args:
    captions: [num_captions] token lists.
    vocab: optional word ids to extend.

  Returns:
    The `EncodedCaptions`.
  """
  words = list(itertools.chain.from_iterable(captions))
  lengths = np.fromiter(map(len, captions), np.int64, len(captions))
  ids = {} if vocab is None else dict(vocab)
  distinct = dict.fromkeys(words)
  for word in distinct:
    if word not in ids:
      ids[word] = len(ids) + 1
  space_ids = np.fromiter(map(ids.__getitem__, words), np.int64, len(words))
  space_offsets = np.zeros(len(captions) + 1, np.int64)
  np.cumsum(lengths, out=space_offsets[1:])
  encoded, offsets = space_ids, space_offsets
  if not all(token and token.split() == [token] for token in distinct):
    # Rare: tokens that hold whitespace (or are empty) become 0..k words.
    token_ids = [ids[token] for token in distinct]
    parts, part_start, part_count = [], [], []
    for token in distinct:
      split = token.split()
      part_start.append(len(parts))
      part_count.append(len(split))
      for word in split:
        if word not in ids:
          ids[word] = len(ids) + 1
        parts.append(ids[word])
    parts = np.array(parts, np.int64)
    start = np.zeros(len(ids) + 1, np.int64)
    count = np.zeros(len(ids) + 1, np.int64)
    start[token_ids], count[token_ids] = part_start, part_count
    start, count = start[space_ids], count[space_ids]
    first = np.cumsum(count) - count
    inner = np.arange(int(count.sum())) - np.repeat(first, count)
    encoded = parts[np.repeat(start, count) + inner]
    caption = np.repeat(np.arange(len(captions)), lengths)
    word_lengths = np.bincount(caption, weights=count,
                               minlength=len(captions)).astype(np.int64)
    offsets = np.zeros(len(captions) + 1, np.int64)
    np.cumsum(word_lengths, out=offsets[1:])
  empty = np.flatnonzero(lengths == 0)
  if empty.size:  # ''.split(' ') == ['']
    if '' not in ids:
      ids[''] = len(ids) + 1
    space_ids = np.insert(space_ids, space_offsets[empty], ids[''])
    space_offsets = space_offsets + np.searchsorted(
        empty, np.arange(len(captions) + 1), side='left')
  return EncodedCaptions(ids=encoded, offsets=offsets, space_ids=space_ids,
                         space_offsets=space_offsets, vocab=Vocabulary(ids))


def encode(words: list[str], vocab: dict[str, int] | None = None
           ) -> tuple[np.ndarray, Vocabulary]:
  """Word ids of `words` ([num_words] int64), extending `vocab` if given."""
  ids = {} if vocab is None else dict(vocab)
  for word in dict.fromkeys(words):
    if word not in ids:
      ids[word] = len(ids) + 1
  encoded = np.fromiter(map(ids.__getitem__, words), np.int64, len(words))
  return encoded, Vocabulary(ids)


def ngram_codes(ids: np.ndarray, offsets: np.ndarray, base: int,
                max_n: int = MAX_N):
  """Codes of every n-gram (n = 1..max_n) of a set of token sequences.

  Args:
    ids: [num_tokens] int64 token ids (>= 1), sequences back to back.
    offsets: [num_sequences + 1] int64 start of each sequence in `ids`.
    base: the code base, larger than every id.
    max_n: the longest n-gram.

  Returns:
    (codes, order, sequence, position): [num_ngrams] int64 each, in order of
    n then position; `order` is n - 1.
  """
  if base ** max_n >= 2**63:
    raise ValueError(
        f'{base - 1} distinct words are too many for exact {max_n}-gram '
        f'codes (at most {_MAX_VOCAB - 1}); score smaller sets at a time.')
  num_tokens = ids.shape[0]
  lengths = np.diff(offsets)
  sequence = np.repeat(np.arange(lengths.shape[0]), lengths)
  remaining = offsets[1:][sequence] - np.arange(num_tokens)  # tokens left
  codes, orders, sequences, positions = [], [], [], []
  code = np.zeros(num_tokens, np.int64)
  for n in range(1, max_n + 1):
    shifted = np.zeros(num_tokens, np.int64)
    shifted[:num_tokens - n + 1] = ids[n - 1:]
    code = code * base + shifted
    valid = np.flatnonzero(remaining >= n)
    codes.append(code[valid])
    orders.append(np.full(valid.shape[0], n - 1, np.int64))
    sequences.append(sequence[valid])
    positions.append(valid)
  return (np.concatenate(codes), np.concatenate(orders),
          np.concatenate(sequences), np.concatenate(positions))


def _run_starts(*keys: np.ndarray) -> np.ndarray:
  """Indices where any of the sorted, aligned `keys` changes."""
  size = keys[0].shape[0]
  change = np.zeros(size, bool)
  if size:
    change[0] = True
  for key in keys:
    change[1:] |= key[1:] != key[:-1]
  return np.flatnonzero(change)


def build(candidates: Sequence[Sequence[str]],
          references: Sequence[Sequence[Sequence[str]]],
          max_n: int = MAX_N,
          vocab: dict[str, int] | None = None) -> NgramTable:
  """Groups the n-grams of candidates and references by image.

  Args:
    candidates: [num_images] token lists, one candidate per image.
    references: [num_images] lists of reference token lists (at least one).
    max_n: the longest n-gram.
    vocab: optional word ids to extend (so codes agree with another table).

  Returns:
    The `NgramTable`.
  """
  if len(candidates) != len(references):
    raise ValueError(f'{len(candidates)} candidates but {len(references)} '
                     'reference sets; give one of each per image.')
  for i, refs in enumerate(references):
    if not refs:
      raise ValueError(f'image #{i} has no reference caption.')
  captions = []
  for cand, refs in zip(candidates, references):
    captions.append(cand)
    captions.extend(refs)
  counts = np.fromiter(map(len, references), np.int64, len(references)) + 1
  first = np.zeros(len(references) + 1, np.int64)
  np.cumsum(counts, out=first[1:])
  num_captions = int(first[-1])
  words = encode_captions(captions, vocab)
  ids, offsets, vocabulary = words.ids, words.offsets, words.vocab
  lengths = np.diff(offsets)
  caption_image = np.repeat(np.arange(len(references)), counts)
  is_candidate = np.zeros(num_captions, bool)
  is_candidate[first[:-1]] = True

  codes, orders, caps, _ = ngram_codes(ids, offsets, vocabulary.base, max_n)
  perm = np.argsort(codes, kind='stable')
  codes, orders, caps = codes[perm], orders[perm], caps[perm]
  starts = _run_starts(codes, caps)
  entry_count = np.diff(np.append(starts, codes.shape[0]))
  entry_code, entry_order, entry_caption = (
      codes[starts], orders[starts], caps[starts])
  entry_image = caption_image[entry_caption]
  group_start = _run_starts(entry_code, entry_image)
  entry_group = np.zeros(entry_code.shape[0], np.int64)
  if group_start.shape[0]:
    entry_group[group_start[1:]] = 1
  np.cumsum(entry_group, out=entry_group)
  entry_is_candidate = is_candidate[entry_caption]
  # A candidate entry, when there is one, opens its group.
  group_candidate_count = np.where(entry_is_candidate[group_start],
                                   entry_count[group_start], 0)
  reference_count = np.where(entry_is_candidate, 0, entry_count)
  if group_start.shape[0]:
    group_reference_max = np.maximum.reduceat(reference_count, group_start)
  else:
    group_reference_max = np.zeros(0, np.int64)
  group_code = entry_code[group_start]
  new_ngram = np.zeros(group_code.shape[0], np.int64)
  new_ngram[1:] = group_code[1:] != group_code[:-1]
  return NgramTable(
      num_images=len(references),
      max_n=max_n,
      vocab=vocabulary,
      words=words,
      first=first,
      lengths=lengths,
      caption_image=caption_image,
      is_candidate=is_candidate,
      entry_code=entry_code,
      entry_order=entry_order,
      entry_caption=entry_caption,
      entry_count=entry_count,
      entry_group=entry_group,
      group_start=group_start,
      group_image=entry_image[group_start],
      group_order=entry_order[group_start],
      group_candidate_count=group_candidate_count,
      group_reference_max=group_reference_max,
      group_ngram=np.cumsum(new_ngram),
  )
