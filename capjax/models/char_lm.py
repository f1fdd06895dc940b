"""The character-level story model: embedding, stacked LSTMs, softmax.

The hashtag seed's second phase: a 2-layer character LSTM language model.
Three ways to run it, all over the same parameters:
  * `__call__(tokens, carry)`: a whole window (teacher forcing); each layer
    projects the whole sequence at once and runs the cell's fused scan;
  * `prime(tokens, lengths)`: feed seed texts of different lengths in ONE
    masked scan over time and return the state after each seed and the
    logits of the character that follows it;
  * `step(carry, tokens)`: one character, for the decoders.
The carry is a tuple with one cell carry per layer, leaves [batch, hidden].
"""

import jax
import jax.numpy as jnp
from flax import linen as nn

from capjax.models import cells
from capjax.models import precision
from capjax.models.captioners import base


class CharLM(nn.Module):
  """Character LM.

  Attributes:
    vocab_size: V, characters including the special ids.
    embed_dim: character embedding size.
    hidden_dim: state size of every layer.
    num_layers: stacked recurrent layers (2 in the seed).
    cell: 'lstm' or 'gru'.
    fused: use the cells' fused recurrence in `__call__`.
    dtype: matmul compute dtype (model.dtype; the state stays float32).
  """

  vocab_size: int
  embed_dim: int = 64
  hidden_dim: int = 256
  num_layers: int = 2
  cell: str = 'lstm'
  fused: bool = True
  dtype: str = 'float32'

  def setup(self):
    self.embed = nn.Embed(self.vocab_size, self.embed_dim)
    self.layers = [cells.create(self.cell, self.hidden_dim, fused=self.fused,
                                dtype=self.dtype)
                   for _ in range(self.num_layers)]
    self.output = precision.dense(self.vocab_size, self.dtype)

  def init_carry(self, batch_shape: tuple[int, ...]):
    """The zero state: one carry per layer, leaves [*batch_shape, hidden]."""
    return tuple(layer.zero_carry(tuple(batch_shape)) for layer in self.layers)

  def __call__(self, tokens: jax.Array, carry=None):
    """Teacher forcing over a window.

    Args:
      tokens: [batch, time] int32 input characters.
      carry: the state before the window (None: zeros).

    Returns:
      (logits [batch, time, V] float32, the state after the window).
    """
    if carry is None:
      carry = self.init_carry(tokens.shape[:1])
    x = jnp.swapaxes(self.embed(tokens), 0, 1)  # [time, batch, embed]
    new_carry = []
    for layer, layer_carry in zip(self.layers, carry):
      layer_carry, x = layer.scan(layer_carry,
                                  base.rows(layer.project, x, batch_axis=1),
                                  time_major=True)
      new_carry.append(layer_carry)
    logits = base.rows(self.output, jnp.swapaxes(x, 0, 1))
    return logits, tuple(new_carry)

  def step(self, carry, tokens: jax.Array):
    """One character: tokens [...] int32 -> (logits [..., V], carry)."""
    x = self.embed(tokens)
    new_carry = []
    for layer, layer_carry in zip(self.layers, carry):
      layer_carry, x = layer.step(layer_carry, layer.project(x))
      new_carry.append(layer_carry)
    return self.output(x), tuple(new_carry)

  def prime(self, tokens: jax.Array, lengths: jax.Array):
    """Feeds each seed text in one scan over time.

    Args:
      tokens: [batch, time] int32 seeds, left-aligned (anything after a
        seed's length is ignored).
      lengths: [batch] int32, each seed's length (>= 1).

    Returns:
      (carry after each seed, logits [batch, V] of the next character).
    """
    batch, time = tokens.shape
    live = jnp.arange(time)[None, :] < lengths[:, None]  # [batch, time]

    def body(module, state, inputs):
      carry, logits = state
      token, alive = inputs
      new_logits, new_carry = module.step(carry, token)

      def keep(new, old):
        return jnp.where(alive.reshape(alive.shape + (1,) * (new.ndim - 1)),
                         new, old)

      return (jax.tree.map(keep, new_carry, carry),
              keep(new_logits, logits)), None

    scan = nn.scan(body, variable_broadcast='params',
                   split_rngs={'params': False}, in_axes=1)
    start = (self.init_carry((batch,)),
             jnp.zeros((batch, self.vocab_size), jnp.float32))
    (carry, logits), _ = scan(self, start, (tokens, live))
    return carry, logits
