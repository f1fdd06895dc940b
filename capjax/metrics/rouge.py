"""ROUGE-L as the COCO toolkit computes it, with a bit-parallel LCS in NumPy.

Per image: the longest common subsequence of the candidate with each
reference gives precision (lcs / candidate length) and recall (lcs /
reference length); the maxima over references, P and R, are combined as
(1 + beta^2) P R / (R + beta^2 P) with beta = 1.2, and the scores are averaged
over images. Captions are split on single spaces as in the toolkit, so an
empty caption is one empty word.

The LCS of all (candidate, reference) pairs runs at once: each reference
(when at most 64 words) is a 64-bit mask per word, and every candidate word
updates a uint64 state with the Allison-Dix / Hyyro recurrence
V <- (V + (V & M)) | (V & ~M); the LCS is the number of zero bits of V.
Longer pairs fall back to the dynamic programme.
"""

import dataclasses
from typing import Sequence

import numpy as np

from capjax.metrics import ngrams

BETA = 1.2
_WORD_BITS = 64


@dataclasses.dataclass(frozen=True)
class RougeResult:
  score: float  # mean over images
  per_image: np.ndarray  # [num_images] float64


def _lcs_dynamic(a: Sequence[int], b: Sequence[int]) -> int:
  """Textbook O(len(a) len(b)) LCS length, for the rare long pairs."""
  previous = [0] * (len(b) + 1)
  for x in a:
    current = [0]
    for j, y in enumerate(b):
      current.append(previous[j] + 1 if x == y else
                     max(previous[j + 1], current[j]))
    previous = current
  return previous[-1]


def lcs_lengths(a_ids: np.ndarray, a_offsets: np.ndarray,
                b_ids: np.ndarray, b_offsets: np.ndarray,
                pair_a: np.ndarray, pair_b: np.ndarray) -> np.ndarray:
  """LCS lengths of many pairs of integer sequences.

  Args:
    a_ids: [num_a_tokens] int64 ids of the A sequences, back to back.
    a_offsets: [num_a + 1] int64 starts of the A sequences.
    b_ids: [num_b_tokens] int64 ids of the B sequences.
    b_offsets: [num_b + 1] int64 starts of the B sequences.
    pair_a: [num_pairs] int64 A sequence of each pair.
    pair_b: [num_pairs] int64 B sequence of each pair.

  Returns:
    [num_pairs] int64 LCS lengths.
  """
  a_len = np.diff(a_offsets)[pair_a]
  b_len = np.diff(b_offsets)[pair_b]
  result = np.zeros(pair_a.shape[0], np.int64)
  # Bits over B when B fits a word, else over A when A does.
  over_b = b_len <= _WORD_BITS
  over_a = ~over_b & (a_len <= _WORD_BITS)
  for mask, (x_ids, x_off, px, y_ids, y_off, py) in (
      (over_b, (a_ids, a_offsets, pair_a, b_ids, b_offsets, pair_b)),
      (over_a, (b_ids, b_offsets, pair_b, a_ids, a_offsets, pair_a))):
    at = np.flatnonzero(mask)
    if at.size:
      result[at] = _lcs_bit_parallel(x_ids, x_off, px[at], y_ids, y_off,
                                     py[at])
  for i in np.flatnonzero(~over_b & ~over_a):
    a = a_ids[a_offsets[pair_a[i]]:a_offsets[pair_a[i] + 1]].tolist()
    b = b_ids[b_offsets[pair_b[i]]:b_offsets[pair_b[i] + 1]].tolist()
    result[i] = _lcs_dynamic(a, b)
  return result


def _lcs_bit_parallel(x_ids, x_offsets, pair_x, y_ids, y_offsets, pair_y):
  """LCS with the bits over Y (every Y used is at most 64 long)."""
  # Match masks of each used Y sequence: one row per (sequence, word).
  used_y = np.unique(pair_y)
  y_len = np.diff(y_offsets)[used_y]
  token_at = np.repeat(y_offsets[used_y], y_len) + (
      np.arange(y_len.sum()) - np.repeat(np.cumsum(y_len) - y_len, y_len))
  position = (token_at - np.repeat(y_offsets[used_y], y_len)).astype(np.uint64)
  base = int(max(x_ids.max(initial=0), y_ids.max(initial=0))) + 1
  key = np.repeat(used_y, y_len) * base + y_ids[token_at]
  order = np.argsort(key, kind='stable')
  key, bits = key[order], np.left_shift(np.uint64(1), position[order])
  starts = np.flatnonzero(np.diff(key, prepend=-1))
  table_key = key[starts]
  table_mask = np.bitwise_or.reduceat(bits, starts)

  x_len = np.diff(x_offsets)[pair_x]
  x_start = x_offsets[pair_x]
  state = np.full(pair_x.shape[0], np.iinfo(np.uint64).max, np.uint64)
  active = np.arange(pair_x.shape[0])
  step = 0
  while active.size:
    active = active[x_len[active] > step]
    if not active.size:
      break
    query = pair_y[active] * base + x_ids[x_start[active] + step]
    where = np.minimum(np.searchsorted(table_key, query),
                       table_key.shape[0] - 1)
    match = np.where(table_key[where] == query, table_mask[where],
                     np.uint64(0))
    v = state[active]
    state[active] = (v + (v & match)) | (v & ~match)
    step += 1
  length = np.diff(y_offsets)[pair_y].astype(np.uint64)
  full = length >= _WORD_BITS
  low = np.where(full, np.iinfo(np.uint64).max,
                 np.left_shift(np.uint64(1), np.where(full, 0, length))
                 - np.uint64(1))
  zeros = length.astype(np.int64) - np.bitwise_count(state & low).astype(
      np.int64)
  return zeros


def _from_lcs(lcs: np.ndarray, cand_len: np.ndarray, ref_len: np.ndarray,
              per_image_refs: np.ndarray, beta: float) -> RougeResult:
  """Per-image F-measures from the LCS of each (candidate, reference) pair."""
  num_images = per_image_refs.shape[0]
  precision = lcs / cand_len
  recall = lcs / ref_len
  starts = np.zeros(num_images, np.int64)
  np.cumsum(per_image_refs[:-1], out=starts[1:])
  p = np.maximum.reduceat(precision, starts)
  r = np.maximum.reduceat(recall, starts)
  nonzero = (p != 0) & (r != 0)
  denom = np.where(nonzero, r + beta**2 * p, 1.0)
  per_image = np.where(nonzero, ((1 + beta**2) * p * r) / denom, 0.0)
  return RougeResult(score=float(np.mean(per_image)), per_image=per_image)


def from_table(table: ngrams.NgramTable, beta: float = BETA) -> RougeResult:
  """ROUGE-L reusing the word ids of an n-gram table (see `ngrams.build`).

  Args:
    table: the n-gram table of the candidates and references.
    beta: the recall weight of the F-measure.

  Returns:
    A `RougeResult`.
  """
  num_images = table.num_images
  if not num_images:
    return RougeResult(score=float('nan'), per_image=np.zeros(0))
  ids, offsets = table.words.space_ids, table.words.space_offsets
  lengths = np.diff(offsets)
  ref = np.flatnonzero(~table.is_candidate)
  cand = table.first[table.caption_image[ref]]
  lcs = lcs_lengths(ids, offsets, ids, offsets, cand, ref).astype(np.float64)
  return _from_lcs(lcs, lengths[cand], lengths[ref], np.diff(table.first) - 1,
                   beta)


def compute(candidates: Sequence[Sequence[str]],
            references: Sequence[Sequence[Sequence[str]]],
            beta: float = BETA) -> RougeResult:
  """ROUGE-L of tokenized captions.

  Args:
    candidates: [num_images] token lists.
    references: [num_images] lists of reference token lists.
    beta: the recall weight of the F-measure.

  Returns:
    A `RougeResult`: corpus `score` and `per_image` [num_images].
  """
  if len(candidates) != len(references):
    raise ValueError(f'{len(candidates)} candidates but {len(references)} '
                     'reference sets; give one of each per image.')
  num_images = len(candidates)
  if not num_images:
    return RougeResult(score=float('nan'), per_image=np.zeros(0))
  return from_table(ngrams.build(candidates, references, max_n=1), beta)
