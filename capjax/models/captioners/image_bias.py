"""Karpathy and Fei-Fei's generator (seed 003): the image as a first bias.

  h_t = f(W_hx x_t + W_hh h_{t-1} + b_h + 1(t = 1) . b_v),  b_v = W_hi CNN(I)

The image enters once, as a bias of the first step (the one that reads
BOS), and never again: the recurrence carries it from there. Here `f` is the
configured cell (LSTM or GRU), and `b_v` is added to the first step's gate
pre-activations.
"""

from flax import linen as nn
import jax
import jax.numpy as jnp

from capjax.models import cells
from capjax.models import precision
from capjax.models.captioners import base


class ImageBias(nn.Module):
  """The image as a bias of the first step only (seed 003's generator)."""

  WORD_EMBEDDING = 'embed'  # its word lookup (model.embedding_init)

  vocab_size: int
  embed_dim: int = 256
  hidden_dim: int = 512
  cell: str = 'lstm'
  dropout: float = 0.0
  fused: bool = True
  unroll: int = 1
  dtype: str = 'float32'  # matmul compute dtype (model.dtype)

  def setup(self):
    self.embed = nn.Embed(self.vocab_size, self.embed_dim)
    self.rnn = cells.create(
        self.cell, self.hidden_dim, fused=self.fused, unroll=self.unroll,
        dtype=self.dtype)
    # W_hi: the image to the first step's gate pre-activations.
    self.image_bias = precision.dense(self.rnn.num_gates * self.hidden_dim,
                                      self.dtype, use_bias=False)
    self.drop = nn.Dropout(self.dropout)
    self.output = precision.dense(self.vocab_size, self.dtype)

  def __call__(
      self,
      features: base.Features,
      tokens: jax.Array,
      *,
      train: bool,
      captions_per_image: int = 1,
  ):
    """tokens: [images * R, time] int32 -> logits [images * R, time, vocab].

    R = captions_per_image; the captions of an image are consecutive rows.
    """
    global_feature = self.drop(features[0], deterministic=not train)
    bias = jnp.repeat(self.image_bias(global_feature), captions_per_image,
                      axis=0)
    words = self.drop(self.embed(tokens.T), deterministic=not train)
    inputs = base.rows(self.rnn.project, words, batch_axis=1)  # [T, B, G]
    inputs = inputs.at[0].add(bias)
    carry = self.rnn.zero_carry(tokens.shape[:1])
    _, hidden = self.rnn.scan(carry, inputs, time_major=True)
    hidden = self.drop(jnp.swapaxes(hidden, 0, 1), deterministic=not train)
    return base.rows(self.output, hidden)

  def prepare(self, features: base.Features) -> dict:
    return {'bias': self.image_bias(features[0])}

  def init_carry(self, context: dict):
    """(cell carry at zero, the bias still to add [batch, gates])."""
    bias = context['bias']
    return self.rnn.zero_carry(bias.shape[:1]), bias

  def step(self, carry, tokens: jax.Array, context: dict):
    del context  # the image is in the carry until the first step uses it
    rnn_carry, bias = carry
    x_proj = self.rnn.project(self.embed(tokens)) + bias
    rnn_carry, hidden = self.rnn.step(rnn_carry, x_proj)
    return self.output(hidden), (rnn_carry, jnp.zeros_like(bias))
