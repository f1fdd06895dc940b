"""Ranking losses over an in-batch similarity matrix, as sums and counts.

`scores[i, j]` is the similarity of image i and text j, and text i belongs
to image i. Every image is a query over the batch's texts (image -> text)
and every text a query over its images (text -> image), so a batch of B
pairs holds 2B queries. Each loss returns the SUM of its per-query losses
and the number of queries; the caller divides by the global count.

* `xent`: seed 004's categorical cross-entropy over each row and each column
  of `logit_scale * scores` (the softmax picks the true partner);
* `hinge`: the sum of hinges `max(0, margin - s(i, i) + s(i, j))` over every
  negative of a query (Karpathy and Fei-Fei's objective with margin 1);
* `hardest`: VSE++'s hinge on the hardest negative of each query only.

`same[i, j]` (optional) marks pairs known to match (two captions of one
image in the batch): they are never used as negatives.
"""

import dataclasses

import jax
import jax.numpy as jnp

LOSSES = ('xent', 'hinge', 'hardest')
NEG_INF = -1e9


@dataclasses.dataclass(frozen=True)
class Objective:
  """Which ranking loss, with its settings (config block `retrieval`)."""

  kind: str = 'xent'  # xent | hinge | hardest
  margin: float = 0.2  # hinge and hardest
  logit_scale: float = 10.0  # xent

  def __post_init__(self):
    if self.kind not in LOSSES:
      raise ValueError(f'Unknown ranking loss {self.kind!r}: choose one of '
                       f'{LOSSES} (config key retrieval.loss).')

  def __call__(self, scores: jax.Array, same: jax.Array | None = None):
    """`ranking_loss` of scores [B, B] with these settings."""
    return ranking_loss(scores, self.kind, margin=self.margin,
                        logit_scale=self.logit_scale, same=same)


def _negatives(scores: jax.Array, same: jax.Array | None) -> jax.Array:
  """[B, B] bool: True where (i, j) is a negative pair."""
  eye = jnp.eye(scores.shape[0], dtype=bool)
  return ~eye if same is None else ~(eye | same)


def ranking_loss(
    scores: jax.Array, kind: str, *, margin: float = 0.2,
    logit_scale: float = 10.0, same: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
  """Bidirectional ranking loss of an in-batch score matrix.

  Args:
    scores: [B, B] float32, images along rows, texts along columns; the
      diagonal holds the true pairs.
    kind: 'xent', 'hinge' or 'hardest'.
    margin: the hinge margin (hinge and hardest).
    logit_scale: multiplies the scores before the softmax (xent).
    same: [B, B] bool, pairs that also match (never negatives), or None.

  Returns:
    `(loss_sum, queries)`: [] float32 each; queries = 2B.
  """
  if kind not in LOSSES:
    raise ValueError(f'Unknown ranking loss {kind!r}: choose one of {LOSSES} '
                     '(config key retrieval.loss).')
  scores = scores.astype(jnp.float32)
  negative = _negatives(scores, same)
  diagonal = jnp.diagonal(scores)
  queries = jnp.float32(2 * scores.shape[0])
  if kind == 'xent':
    eye = jnp.eye(scores.shape[0], dtype=bool)
    logits = jnp.where(negative | eye, logit_scale * scores, NEG_INF)
    target = logit_scale * diagonal
    i2t = jax.nn.logsumexp(logits, axis=1) - target
    t2i = jax.nn.logsumexp(logits, axis=0) - target
    return jnp.sum(i2t) + jnp.sum(t2i), queries
  # i2t[i, j]: image i ranks text j above its own; t2i[i, j]: text j ranks
  # image i above its own.
  i2t = jax.nn.relu(margin - diagonal[:, None] + scores)
  t2i = jax.nn.relu(margin - diagonal[None, :] + scores)
  i2t, t2i = jnp.where(negative, i2t, 0.0), jnp.where(negative, t2i, 0.0)
  if kind == 'hinge':
    return jnp.sum(i2t) + jnp.sum(t2i), queries
  return jnp.sum(i2t.max(axis=1)) + jnp.sum(t2i.max(axis=0)), queries


def in_batch_hits(scores: jax.Array,
                  same: jax.Array | None = None) -> jax.Array:
  """Queries whose true partner scores above every negative: [] float32.

  Counts both directions (out of 2B), like `ranking_loss`'s queries.
  """
  scores = scores.astype(jnp.float32)
  negative = _negatives(scores, same)
  diagonal = jnp.diagonal(scores)
  masked = jnp.where(negative, scores, NEG_INF)
  rows = jnp.sum(diagonal > masked.max(axis=1))
  cols = jnp.sum(diagonal > masked.max(axis=0))
  return (rows + cols).astype(jnp.float32)
