"""An image-free recurrent language model (the m-RNN paper's RNN-Base idea).

Embedding, a stack of recurrent layers (`capjax.models.cells`), a softmax over
the vocabulary. It follows the sequence-model capability of the captioners:
`__call__(tokens)` is teacher forcing through the fused scan, and
`init_carry` / `step` drive `capjax.decoding`.
"""

from flax import linen as nn
import jax

from capjax.models import cells
from capjax.models.captioners import base


class RecurrentLM(nn.Module):
  """Embedding -> `num_layers` recurrent layers -> logits."""

  vocab_size: int
  embed_dim: int = 128
  hidden_dim: int = 256
  num_layers: int = 1
  cell: str = 'lstm'
  dropout: float = 0.0
  fused: bool = True
  unroll: int = 1

  def setup(self):
    self.embed = nn.Embed(self.vocab_size, self.embed_dim)
    self.layers = [
        cells.create(self.cell, self.hidden_dim, fused=self.fused,
                     unroll=self.unroll)
        for _ in range(self.num_layers)
    ]
    self.drop = nn.Dropout(self.dropout)
    self.output = nn.Dense(self.vocab_size)

  def __call__(self, tokens: jax.Array, *, train: bool = False) -> jax.Array:
    """tokens [batch, time] int32 -> logits [batch, time, vocab] float32."""
    x = self.drop(self.embed(tokens.T), deterministic=not train)
    for layer in self.layers:
      carry = layer.zero_carry(tokens.shape[:1])
      _, x = layer.scan(carry, base.rows(layer.project, x), time_major=True)
      x = self.drop(x, deterministic=not train)
    return base.rows(self.output, x.swapaxes(0, 1))

  def init_carry(self, batch_shape: tuple[int, ...]):
    """The state before the first token: one carry per layer."""
    return tuple(layer.zero_carry(batch_shape) for layer in self.layers)

  def step(self, carry, tokens: jax.Array):
    """tokens [batch(, beam)] -> (logits [batch(, beam), vocab], carry)."""
    x = self.embed(tokens)
    new_carry = []
    for layer, layer_carry in zip(self.layers, carry):
      layer_carry, x = layer.step(layer_carry, layer.project(x))
      new_carry.append(layer_carry)
    return self.output(x), tuple(new_carry)
