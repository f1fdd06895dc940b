"""Image-text retrieval metrics from a score matrix.

Protocol (as in Karpathy & Fei-Fei and the VSE line of work), with several
captions per image:
- image -> text: an image's rank is the best (smallest) rank of any of its
  captions among all captions;
- text -> image: every caption ranks all images; its rank is that of its
  image.
R@K is the percentage of queries whose rank is below K (ranks start at 0),
the median rank is floor(median(rank)) + 1 and the mean rank mean(rank) + 1.

Ties count against the ground truth: a rank is the number of wrong items
(other images, or captions of other images) scored at least as high as the
ground truth, so a constant score matrix ranks every ground truth last rather
than first.
"""

from typing import Sequence

import numpy as np

RECALL_KS = (1, 5, 10)


def _pessimistic_ranks(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
  """Rank of column truth[q] in row q: other entries scored >= it."""
  target = scores[np.arange(scores.shape[0]), truth]
  return (scores >= target[:, None]).sum(axis=1) - 1


def rank_summary(ranks: np.ndarray, ks: Sequence[int] = RECALL_KS
                 ) -> dict[str, float]:
  """R@K (percent), median and mean rank of 0-based ranks [num_queries]."""
  ranks = np.asarray(ranks)
  out = {f'r{k}': 100.0 * float(np.mean(ranks < k)) for k in ks}
  out['medr'] = float(np.floor(np.median(ranks)) + 1)
  out['meanr'] = float(np.mean(ranks) + 1)
  return out


def image_to_text_ranks(scores: np.ndarray, caption_image: np.ndarray
                        ) -> np.ndarray:
  """0-based rank of each image's best-ranked caption.

  Args:
    scores: [num_images, num_captions] similarity of image i and caption j.
    caption_image: [num_captions] int, the image each caption describes.

  Returns:
    [num_images] int64 ranks.
  """
  scores = np.asarray(scores, np.float64)
  caption_image = np.asarray(caption_image)
  num_images = scores.shape[0]
  ranks = np.empty(num_images, np.int64)
  order = np.argsort(caption_image, kind='stable')
  bounds = np.searchsorted(caption_image[order], np.arange(num_images + 1))
  for i in range(num_images):
    own = order[bounds[i]:bounds[i + 1]]
    if not own.size:
      raise ValueError(f'image {i} has no caption in caption_image.')
    row = scores[i]
    best = row[own].max()
    # Captions of other images scored at least as high as the best own one.
    ranks[i] = int((row >= best).sum()) - int((row[own] >= best).sum())
  return ranks


def text_to_image_ranks(scores: np.ndarray, caption_image: np.ndarray
                        ) -> np.ndarray:
  """0-based rank of each caption's image among all images.

  Args:
    scores: [num_images, num_captions] similarity of image i and caption j.
    caption_image: [num_captions] int, the image each caption describes.

  Returns:
    [num_captions] int64 ranks.
  """
  scores = np.asarray(scores, np.float64)
  return _pessimistic_ranks(scores.T, np.asarray(caption_image))


def evaluate(scores: np.ndarray, caption_image: np.ndarray,
             ks: Sequence[int] = RECALL_KS) -> dict[str, float]:
  """Both directions: keys i2t_r1.., i2t_medr, i2t_meanr, t2i_..., rsum.

  Args:
    scores: [num_images, num_captions] similarities.
    caption_image: [num_captions] int image index of each caption.
    ks: the K of R@K.

  Returns:
    A flat dict of metrics; `rsum` adds all R@K of both directions.
  """
  i2t = rank_summary(image_to_text_ranks(scores, caption_image), ks)
  t2i = rank_summary(text_to_image_ranks(scores, caption_image), ks)
  out = {f'i2t_{k}': v for k, v in i2t.items()}
  out.update({f't2i_{k}': v for k, v in t2i.items()})
  out['rsum'] = sum(i2t[f'r{k}'] + t2i[f'r{k}'] for k in ks)
  return out


def evaluate_folds(scores: np.ndarray, caption_image: np.ndarray,
                   num_folds: int = 5, ks: Sequence[int] = RECALL_KS
                   ) -> dict[str, float]:
  """COCO 1K protocol: images split into `num_folds` equal consecutive folds
  (5 x 1000 for the 5K test set), each scored on its own, then averaged.

  Args:
    scores: [num_images, num_captions] similarities.
    caption_image: [num_captions] int image index of each caption.
    num_folds: the number of folds; must divide the number of images.
    ks: the K of R@K.

  Returns:
    The mean over folds of `evaluate`'s metrics.
  """
  scores = np.asarray(scores)
  caption_image = np.asarray(caption_image)
  num_images = scores.shape[0]
  if num_images % num_folds:
    raise ValueError(f'{num_images} images do not split into {num_folds} '
                     'equal folds.')
  size = num_images // num_folds
  folds = []
  for f in range(num_folds):
    lo, hi = f * size, (f + 1) * size
    cols = np.flatnonzero((caption_image >= lo) & (caption_image < hi))
    folds.append(evaluate(scores[lo:hi][:, cols], caption_image[cols] - lo,
                          ks))
  return {k: float(np.mean([fold[k] for fold in folds])) for k in folds[0]}


def class_precision_recall_at_k(scores: np.ndarray,
                                query_labels: np.ndarray,
                                gallery_labels: np.ndarray,
                                k: int = 10) -> dict[object, tuple[float,
                                                                   float]]:
  """Per-class precision and recall of the top K retrieved items.

  For each query the K highest-scored gallery items are retrieved (ties go
  to the lower gallery index); precision = relevant retrieved / K and
  recall = relevant retrieved / relevant in the gallery, where relevant
  means the same class. Both are averaged over the queries of each class.

  Args:
    scores: [num_queries, num_gallery] similarities.
    query_labels: [num_queries] class of each query.
    gallery_labels: [num_gallery] class of each gallery item.
    k: items retrieved per query.

  Returns:
    class -> (precision, recall), both in [0, 1].
  """
  scores = np.asarray(scores, np.float64)
  query_labels = np.asarray(query_labels)
  gallery_labels = np.asarray(gallery_labels)
  k = min(k, scores.shape[1])
  top = np.argsort(-scores, axis=1, kind='stable')[:, :k]
  hits = (gallery_labels[top] == query_labels[:, None]).sum(axis=1)
  classes, class_size = np.unique(gallery_labels, return_counts=True)
  size = dict(zip(classes.tolist(), class_size.tolist()))
  out = {}
  for label in dict.fromkeys(query_labels.tolist()):
    mask = query_labels == label
    relevant = size.get(label, 0)
    precision = float(np.mean(hits[mask] / k))
    recall = float(np.mean(hits[mask] / relevant)) if relevant else 0.0
    out[label] = (precision, recall)
  return out
