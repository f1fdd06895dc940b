"""Exact top-k over [batch, beam, vocab] scores, reading them by chunks."""

import jax
from jax import lax
from jax import numpy as jnp

from capjax import parallel

NEG_INF = float('-inf')
# Candidates are chosen from chunks of about this many logits: a max per
# chunk, then an exact top-k inside the best chunks only (2x faster than
# lax.top_k over [batch, beam * vocab] on CPU at beam 3, vocab 5000). A
# divisor of the vocabulary size within a factor 2 is used when there is
# one, so no slice of the logits is copied.
TOP_K_CHUNK = 128


def chunk_size(vocab: int) -> int:
  """The chunk of `top_k_candidates`: a divisor of vocab near TOP_K_CHUNK."""
  near = sorted(
    range(TOP_K_CHUNK // 2, 2 * TOP_K_CHUNK + 1),
    key=lambda c: abs(c - TOP_K_CHUNK),
  )
  return next((c for c in near if vocab % c == 0), TOP_K_CHUNK)


def uses_chunks(beam: int, vocab: int, k: int) -> bool:
  """Whether `top_k_candidates` reads the vocabulary by chunks."""
  chunk = chunk_size(vocab)
  return vocab // chunk >= 2 and 2 * k * chunk <= beam * vocab


def chunk_maxima(scores: jax.Array) -> jax.Array:
  """The max of each chunk of `chunk_size` tokens (the last may be shorter).

  Args:
    scores: [batch, beam, vocab] float32.

  Returns:
    [batch, beam, ceil(vocab / chunk_size(vocab))] float32.
  """
  batch, beam, vocab = scores.shape
  chunk = chunk_size(vocab)
  full = vocab // chunk
  maxima = scores[..., : full * chunk].reshape(batch, beam, full, chunk)
  maxima = maxima.max(-1)
  if vocab % chunk:
    rest = scores[..., full * chunk :].max(-1, keepdims=True)
    maxima = jnp.concatenate([maxima, rest], -1)
  return maxima


def batch_top_k(x: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
  """`lax.top_k` over the last axis of x [batch, ..., n], per device.

  Each device of a data-parallel decode ranks its own rows
  (`parallel.per_device`); a plain `lax.top_k` is gathered onto every device.
  """
  return parallel.per_device(lambda rows: lax.top_k(rows, k), x)


def top_k_candidates(
  scores: jax.Array,
  offset: jax.Array,
  k: int,
  *,
  exclude: int | None = None,
  maxima: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The k best (beam, token) pairs per row of offset[b, j] + scores[b, j, v].

  Exact (up to the order of equal values). When `uses_chunks`, it ranks
  chunks of `chunk_size` tokens by their max, then takes the top k inside the
  k best chunks only: each of the k best candidates lies in one of them. That
  reads `scores` once (twice fewer passes than lax.top_k needs on CPU).

  Args:
    scores: [batch, beam, vocab] float32; -inf bans a token.
    offset: [batch, beam] float32, added to every token of the beam.
    k: how many candidates, <= beam * vocab.
    exclude: a token id never chosen (EOS), or None.
    maxima: `chunk_maxima(scores)` if already computed (`exclude` not yet
      applied), or None.

  Returns:
    values: [batch, k] float32, best first; beam: [batch, k] int32;
    token: [batch, k] int32.
  """
  batch, beam, vocab = scores.shape
  if not uses_chunks(beam, vocab, k):
    if exclude is not None:
      scores = jnp.where(jnp.arange(vocab) == exclude, NEG_INF, scores)
    values, flat = batch_top_k(
        (offset[..., None] + scores).reshape(batch, -1), k)
    return values, flat // vocab, flat % vocab
  chunk = chunk_size(vocab)
  if maxima is None:
    maxima = chunk_maxima(scores)
  if exclude is not None:
    # Only the excluded token's chunk changes: recompute its max without it.
    first = exclude // chunk * chunk
    part = lax.slice_in_dim(scores, first, min(first + chunk, vocab), axis=2)
    ids = first + jnp.arange(part.shape[-1])
    part = jnp.where(ids == exclude, NEG_INF, part).max(-1)
    maxima = maxima.at[..., exclude // chunk].set(part)
  chunks = maxima.shape[-1]
  _, best = batch_top_k((offset[..., None] + maxima).reshape(batch, -1), k)
  beam_of, chunk_of = best // chunks, best % chunks
  token = chunk_of[..., None] * chunk + jnp.arange(chunk)  # [batch, k, chunk]
  token = token.reshape(batch, k * chunk)
  flat = jnp.repeat(beam_of, chunk, 1) * vocab + jnp.minimum(token, vocab - 1)
  values = jnp.take_along_axis(scores.reshape(batch, -1), flat, axis=1)
  invalid = token >= vocab
  if exclude is not None:
    invalid |= token == exclude
  values = jnp.where(invalid, NEG_INF, values)
  values += jnp.repeat(jnp.take_along_axis(offset, beam_of, 1), chunk, 1)
  values, pick = batch_top_k(values, k)
  flat = jnp.take_along_axis(flat, pick, axis=1)
  return values, flat // vocab, flat % vocab


def log_normalizer(
  logits: jax.Array, with_maxima: bool
) -> tuple[jax.Array, jax.Array | None]:
  """logsumexp over the vocabulary, optionally sharing a pass with chunk maxima.

  With `with_maxima` the row max comes from `chunk_maxima(logits)`, so the
  logits are read twice in all (chunk maxima, then the sum of exponentials)
  instead of three times.

  Args:
    logits: [batch, beam, vocab] float32.
    with_maxima: also return `chunk_maxima(logits)`.

  Returns:
    lse: [batch, beam] float32; maxima: [batch, beam, chunks] or None.
  """
  if not with_maxima:
    return jax.nn.logsumexp(logits, axis=-1), None
  maxima = chunk_maxima(logits)
  # The barrier keeps XLA from turning this max of maxima into another full
  # pass over the logits.
  top = lax.optimization_barrier(maxima).max(-1)
  top = jnp.where(jnp.isfinite(top), top, 0.0)
  total = jnp.sum(jnp.exp(logits - top[..., None]), axis=-1)
  return top + jnp.log(total), maxima
