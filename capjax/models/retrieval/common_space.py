"""The common-space model of seed 004: (Bi)LSTM sentences, projected images.

The text encoder is an LSTM, a BiLSTM, or a stack of BiLSTM layers (each
layer reads the concatenated forward and backward states of the one below);
the sentence vector is the last state of each direction (the forward state
at the last real word, the backward state at the first) or the mean of the
states over the real words. Both sides are projected to `embed_dim` and
L2-normalised, so the similarity is the cosine, one matmul for all pairs.

Only real words are read (BOS, EOS and PAD are not): the backward direction
runs over each sentence reversed within its own length, so it starts at the
sentence's last word, not at the padding.
"""

from flax import linen as nn
import jax
import jax.numpy as jnp

from capjax.models import cells
from capjax.models import precision
from capjax.models.retrieval import alignment

TEXT_ENCODERS = ('lstm', 'bilstm')
POOLINGS = ('last', 'mean')


def l2_normalize(x: jax.Array, eps: float = 1e-6) -> jax.Array:
  """[..., dim] -> unit vectors along the last axis."""
  return x * jax.lax.rsqrt(
      jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), eps * eps))


def words_first(tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Drops BOS: tokens [N, T] -> (words [N, T - 1], lengths [N] int32).

  With the vocabulary's layout `[BOS, w1..wn, EOS, PAD...]` the real words
  of a row are its first `lengths` entries.
  """
  words = tokens[:, 1:]
  return words, alignment.word_mask(words).sum(axis=1).astype(jnp.int32)


def reverse_within_length(x: jax.Array, lengths: jax.Array) -> jax.Array:
  """Reverses the first lengths[n] steps of each row; the rest stays put.

  Args:
    x: [N, T, ...].
    lengths: [N] int32.

  Returns:
    [N, T, ...]; applying it twice gives x back.
  """
  t = jnp.arange(x.shape[1])[None]
  index = jnp.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
  index = index.reshape(index.shape + (1,) * (x.ndim - 2))
  return jnp.take_along_axis(x, index, axis=1)


class CommonSpace(nn.Module):
  """LSTM / BiLSTM / multilayer BiLSTM text encoder and image projection."""

  vocab_size: int
  embed_dim: int = 128  # the common space
  word_dim: int = 64  # word embedding size
  hidden_dim: int = 128  # LSTM state per direction
  text_encoder: str = 'bilstm'  # lstm | bilstm
  num_layers: int = 1  # stacked (Bi)LSTM layers
  pooling: str = 'last'  # last | mean
  fused: bool = True  # the cells' fused recurrence
  dtype: str = 'float32'  # matmul compute dtype (model.dtype)

  def setup(self):
    if self.text_encoder not in TEXT_ENCODERS:
      raise ValueError(f'model.text_encoder must be one of {TEXT_ENCODERS}; '
                       f'got {self.text_encoder!r}.')
    if self.pooling not in POOLINGS:
      raise ValueError(f'model.pooling must be one of {POOLINGS}; got '
                       f'{self.pooling!r}.')
    if self.num_layers < 1:
      raise ValueError(f'model.num_layers must be >= 1; got '
                       f'{self.num_layers}.')
    directions = 2 if self.text_encoder == 'bilstm' else 1
    self.words = nn.Embed(self.vocab_size, self.word_dim)
    self.layers = [
        [cells.LSTMCell(self.hidden_dim, fused=self.fused, dtype=self.dtype)
         for _ in range(directions)]
        for _ in range(self.num_layers)
    ]
    self.text_proj = precision.dense(self.embed_dim, self.dtype)
    self.image_proj = precision.dense(self.embed_dim, self.dtype)

  def __call__(self, features, tokens: jax.Array):
    """Both sides, for `init`: see `embed_images` and `embed_texts`."""
    return self.embed_images(features), self.embed_texts(tokens)

  def embed_images(self, features) -> jax.Array:
    """(global [B, Dg], grid) -> [B, embed_dim] unit vectors."""
    return l2_normalize(self.image_proj(features[0]))

  def _run(self, cell, x: jax.Array) -> jax.Array:
    """x [N, T, in] -> hs [N, T, hidden] (one direction, from zero)."""
    carry = cell.zero_carry(x.shape[:1])
    _, hs = cell.scan(carry, cell.project(x))
    return hs

  def embed_texts(self, tokens: jax.Array) -> jax.Array:
    """tokens [N, T] int32 (BOS first) -> [N, embed_dim] unit vectors."""
    words, lengths = words_first(tokens)
    mask = alignment.word_mask(words)[..., None]  # [N, T - 1, 1]
    x = self.words(words)
    for layer in self.layers:
      outputs = [self._run(layer[0], x)]
      if len(layer) == 2:
        backward = self._run(layer[1], reverse_within_length(x, lengths))
        outputs.append(reverse_within_length(backward, lengths))
      x = jnp.concatenate(outputs, axis=-1) * mask
    if self.pooling == 'mean':
      pooled = x.sum(axis=1) / jnp.maximum(mask.sum(axis=1), 1.0)
    else:
      last = jnp.maximum(lengths - 1, 0)[:, None, None]
      forward = jnp.take_along_axis(
          x[..., :self.hidden_dim], last, axis=1)[:, 0]
      # The backward direction ends at the first word.
      pooled = jnp.concatenate([forward, x[:, 0, self.hidden_dim:]], axis=-1)
    return l2_normalize(self.text_proj(pooled))


def similarity(images: jax.Array, texts: jax.Array) -> jax.Array:
  """Cosine of every pair: images [K, D], texts [L, D] -> [K, L]."""
  return images @ texts.T
