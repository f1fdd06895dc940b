"""Hashtag metrics: BLEU-1 over tag sequences, precision/recall/F1 at k.

BLEU-1 is what the hashtag seed reports (corpus BLEU-1 of the COCO toolkit,
`bleu.compute`, one reference tag list per image). It rewards emitting the
frequent tags and tells little about order or coverage, so we also report,
per image and then averaged over images:

  P@k  = |top-k predicted tags & true tags| / k
  R@k  = |top-k predicted tags & true tags| / |true tags|
  F1@k = 2 P@k R@k / (P@k + R@k)   (0 when both are 0)

where the top k of a decoded sequence are its first k tags (a sequence of
fewer than k tags still divides by k) and the top k of a classifier are its
k most probable tags.
"""

from collections.abc import Sequence

import numpy as np

from capjax.metrics import bleu


def bleu1(predicted: Sequence[Sequence[str]],
          references: Sequence[Sequence[str]]) -> float:
  """Corpus BLEU-1 of predicted tag lists against one true tag list each.

  Args:
    predicted: [num_images] tag lists.
    references: [num_images] true tag lists.

  Returns:
    BLEU-1 in [0, 1].
  """
  if len(predicted) != len(references):
    raise ValueError(f'bleu1: {len(predicted)} predictions but '
                     f'{len(references)} references.')
  result = bleu.compute([list(p) for p in predicted],
                        [[list(r)] for r in references], n=1)
  return float(result.scores[0])


def precision_recall_f1_at_k(
    ranked: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
    k: int) -> dict[str, np.ndarray]:
  """Per-image P@k, R@k and F1@k (see the module docstring).

  Args:
    ranked: [num_images] predicted tags, best first.
    references: [num_images] true tags (an image without true tags scores 0
      recall).
    k: how many predicted tags count.

  Returns:
    {'precision', 'recall', 'f1'}: each [num_images] float64.
  """
  if k < 1:
    raise ValueError(f'k must be >= 1, got {k}.')
  if len(ranked) != len(references):
    raise ValueError(f'{len(ranked)} predictions but {len(references)} '
                     'references.')
  precision = np.zeros(len(ranked))
  recall = np.zeros(len(ranked))
  for i, (tags, truth) in enumerate(zip(ranked, references)):
    truth = set(truth)
    top = list(dict.fromkeys(tags))[:k]
    hits = sum(t in truth for t in top)
    precision[i] = hits / k
    recall[i] = hits / len(truth) if truth else 0.0
  total = precision + recall
  f1 = np.where(total > 0, 2 * precision * recall / np.maximum(total, 1e-12),
                0.0)
  return {'precision': precision, 'recall': recall, 'f1': f1}


def tag_scores(
    predicted: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
    *, k: int = 3, ranked: Sequence[Sequence[str]] | None = None,
) -> dict[str, float]:
  """The table's numbers: BLEU-1 and mean P/R/F1@k.

  Args:
    predicted: [num_images] emitted tag lists (decoded, or a classifier's
      tags above its threshold): what BLEU-1 scores.
    references: [num_images] true tag lists.
    k: the cut-off of P/R/F1.
    ranked: [num_images] tags best first for P/R/F1@k (default:
      `predicted`, as for a decoder).

  Returns:
    {'Bleu_1', 'P@k', 'R@k', 'F1@k', 'num_images'}.
  """
  at_k = precision_recall_f1_at_k(
      predicted if ranked is None else ranked, references, k)
  return {
      'Bleu_1': bleu1(predicted, references),
      f'P@{k}': float(at_k['precision'].mean()),
      f'R@{k}': float(at_k['recall'].mean()),
      f'F1@{k}': float(at_k['f1'].mean()),
      'num_images': float(len(references)),
  }
