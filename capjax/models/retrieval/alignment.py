"""Karpathy and Fei-Fei's visual-semantic alignment model (seed 003).

Words are embedded by a bidirectional ReLU RNN (the BRNN of the paper):

  x_t = W_w 1_t,  e_t = relu(W_e x_t + b_e),
  h_f_t = relu(e_t + W_f h_f_{t-1} + b_f),  h_b_t = relu(e_t + W_b h_b_{t+1}
  + b_b),  s_t = relu(W_d (h_f_t + h_b_t) + b_d).

Regions are the cells of the encoder's grid plus the whole image, each
projected into the same space: `v_i = W_m CNN(region_i) + b_m` (the grid and
the global vector come from different layers, so each has its own `W_m`).
The image-sentence score is `S_kl = sum_t max_i v_i . s_t` over the real
words of sentence l. Padding, BOS and EOS positions have `s_t = 0`, so they
add nothing to the sum: a text embedding is just `[texts, time, dim]`.
"""

from flax import linen as nn
import jax
import jax.numpy as jnp

from capjax.data import vocab as vocab_lib
from capjax.models import precision


def word_mask(tokens: jax.Array) -> jax.Array:
  """[..., time] int32 ids -> [..., time] float32, 1 on real words (UNK too)."""
  return (tokens >= vocab_lib.UNK_ID).astype(jnp.float32)


def _masked_relu_rnn(
    w: jax.Array, b: jax.Array, e: jax.Array, mask: jax.Array,
    reverse: bool) -> jax.Array:
  """h_t = mask_t * relu(e_t + W h_prev + b), time-major.

  Zeroing the state on masked steps makes each direction start from zero at
  the first real word it meets, whatever padding surrounds the sentence.

  Args:
    w: [hidden, hidden] recurrent kernel.
    b: [hidden] bias.
    e: [time, batch, hidden] word inputs.
    mask: [time, batch] 1 on real words.
    reverse: run from the last step to the first.

  Returns:
    hs: [time, batch, hidden].
  """

  def body(h, xs):
    e_t, m_t = xs
    h = m_t[:, None] * nn.relu(e_t + h @ w + b)
    return h, h

  h0 = jnp.zeros(e.shape[1:], e.dtype)
  _, hs = jax.lax.scan(body, h0, (e, mask), reverse=reverse)
  return hs


class Alignment(nn.Module):
  """BRNN words and projected regions in one `embed_dim` space."""

  vocab_size: int
  embed_dim: int = 128  # h, the multimodal space
  word_dim: int = 64  # size of W_w 1_t
  hidden_dim: int = 128  # BRNN state
  # matmul compute dtype of the dense layers (model.dtype); the BRNN's
  # recurrence and the word-region scores stay float32
  dtype: str = 'float32'

  def setup(self):
    self.words = nn.Embed(self.vocab_size, self.word_dim)
    # W_e, b_e
    self.word_input = precision.dense(self.hidden_dim, self.dtype)
    orthogonal = nn.initializers.orthogonal()
    self.w_f = self.param('w_forward', orthogonal,
                          (self.hidden_dim, self.hidden_dim))
    self.b_f = self.param('b_forward', nn.initializers.zeros,
                          (self.hidden_dim,))
    self.w_b = self.param('w_backward', orthogonal,
                          (self.hidden_dim, self.hidden_dim))
    self.b_b = self.param('b_backward', nn.initializers.zeros,
                          (self.hidden_dim,))
    # W_d, b_d; W_m of the grid cells and of the whole image
    self.word_output = precision.dense(self.embed_dim, self.dtype)
    self.grid_proj = precision.dense(self.embed_dim, self.dtype)
    self.global_proj = precision.dense(self.embed_dim, self.dtype)

  def __call__(self, features, tokens: jax.Array):
    """Both sides, for `init`: see `embed_images` and `embed_texts`."""
    return self.embed_images(features), self.embed_texts(tokens)

  def embed_images(self, features) -> jax.Array:
    """(global [B, Dg], grid [B, L, D]) -> regions [B, L + 1, embed_dim]."""
    global_feature, grid = features
    whole = self.global_proj(global_feature)[:, None]
    return jnp.concatenate([self.grid_proj(grid), whole], axis=1)

  def embed_texts(self, tokens: jax.Array) -> jax.Array:
    """tokens [N, T] int32 -> words s_t [N, T, embed_dim], 0 off real words."""
    mask = word_mask(tokens).T  # [T, N]
    e = nn.relu(self.word_input(self.words(tokens.T)))  # [T, N, hidden]
    h_f = _masked_relu_rnn(self.w_f, self.b_f, e, mask, reverse=False)
    h_b = _masked_relu_rnn(self.w_b, self.b_b, e, mask, reverse=True)
    s = nn.relu(self.word_output(h_f + h_b)) * mask[..., None]
    return jnp.swapaxes(s, 0, 1)


def word_region_scores(regions: jax.Array, words: jax.Array) -> jax.Array:
  """v_i . s_t of one image and one sentence each: [B, T, R] from [B, R, D]
  regions and [B, T, D] words (pairs along the batch axis)."""
  return jnp.einsum('brd,btd->btr', regions, words)


def similarity(regions: jax.Array, words: jax.Array) -> jax.Array:
  """S_kl = sum_t max_i v_i . s_t for every image k and sentence l.

  Args:
    regions: [K, R, D] image regions.
    words: [L, T, D] sentence words (0 on non-words).

  Returns:
    [K, L] float32 scores.
  """
  dots = jnp.einsum('krd,ltd->kltr', regions, words)
  return dots.max(axis=-1).sum(axis=-1)


def best_regions(regions: jax.Array, words: jax.Array) -> jax.Array:
  """argmax_i v_i . s_t per word: [B, T] int32 from paired [B, R, D] and
  [B, T, D] (the alignment the paper draws)."""
  return jnp.argmax(word_region_scores(regions, words), axis=-1)
