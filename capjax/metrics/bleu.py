"""Corpus BLEU-1..4 exactly as the COCO toolkit's `bleu_scorer` computes it.

Clipped n-gram matches against the maximum count over an image's references,
the reference length closest to the candidate's (ties to the shorter), the
toolkit's smoothing constants (1e-9 and 1e-15) and its brevity penalty, at
corpus level and per image.
"""

import dataclasses
import math
from typing import Sequence

import numpy as np

from capjax.metrics import ngrams

_SMALL = 1e-9
_TINY = 1e-15


@dataclasses.dataclass(frozen=True)
class BleuStats:
  """The corpus statistics the toolkit prints with `verbose=1`."""
  reflen: int
  testlen: int
  guess: list[int]  # [n] candidate n-grams
  correct: list[int]  # [n] clipped matches
  ratio: float


@dataclasses.dataclass(frozen=True)
class BleuResult:
  scores: list[float]  # [n] corpus BLEU-1..n
  per_image: np.ndarray  # [num_images, n] float64 per-image BLEU-1..n
  stats: BleuStats


def from_table(table: ngrams.NgramTable) -> BleuResult:
  """BLEU from a precomputed n-gram table (see `ngrams.build`)."""
  n = table.max_n
  num_images = table.num_images
  cand = table.first[:-1]
  testlen = table.lengths[cand]
  # Closest reference length, ties to the shorter one: min of |d| * K + l.
  ref_lengths = table.lengths[~table.is_candidate]
  ref_image = table.caption_image[~table.is_candidate]
  big = int(ref_lengths.max(initial=0)) + 1
  key = np.abs(ref_lengths - testlen[ref_image]) * big + ref_lengths
  ref_starts = table.first[:-1] - np.arange(num_images)
  reflen = np.minimum.reduceat(key, ref_starts) % big if num_images else key
  guess = np.maximum(0, testlen[:, None] - np.arange(n)[None, :])
  has_candidate = table.group_candidate_count > 0
  clipped = np.minimum(table.group_candidate_count,
                       table.group_reference_max)[has_candidate]
  slot = (table.group_image * n + table.group_order)[has_candidate]
  correct = np.bincount(slot, weights=clipped, minlength=num_images * n)
  correct = correct.reshape(num_images, n)

  # Per image, in the toolkit's operation order.
  per_image = np.empty((num_images, n))
  running = np.ones(num_images)
  for k in range(n):
    running = running * ((correct[:, k] + _TINY) / (guess[:, k] + _SMALL))
    per_image[:, k] = running ** (1.0 / (k + 1))
  ratio = (testlen + _TINY) / (reflen + _SMALL)
  short = ratio < 1
  per_image[short] *= np.exp(1 - 1 / ratio[short])[:, None]

  total_correct = [int(c) for c in correct.sum(axis=0)]
  total_guess = [int(g) for g in guess.sum(axis=0)]
  total_test, total_ref = int(testlen.sum()), int(reflen.sum())
  scores = []
  running = 1.0
  for k in range(n):
    running *= float(total_correct[k] + _TINY) / (total_guess[k] + _SMALL)
    scores.append(running ** (1.0 / (k + 1)))
  corpus_ratio = (total_test + _TINY) / (total_ref + _SMALL)
  if corpus_ratio < 1:
    scores = [s * math.exp(1 - 1 / corpus_ratio) for s in scores]
  stats = BleuStats(reflen=total_ref, testlen=total_test, guess=total_guess,
                    correct=total_correct, ratio=corpus_ratio)
  return BleuResult(scores=scores, per_image=per_image, stats=stats)


def compute(candidates: Sequence[Sequence[str]],
            references: Sequence[Sequence[Sequence[str]]],
            n: int = 4) -> BleuResult:
  """Corpus and per-image BLEU-1..n of tokenized captions.

  Args:
    candidates: [num_images] token lists (one candidate per image).
    references: [num_images] lists of reference token lists.
    n: the highest n-gram order.

  Returns:
    A `BleuResult`: `scores` [n], `per_image` [num_images, n], `stats`.
  """
  return from_table(ngrams.build(candidates, references, max_n=n))
