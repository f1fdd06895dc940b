"""Show-and-Tell (image injected first) and merge captioners.

Every captioner follows the contract of DESIGN.md, with the image context
split out so that it is computed once per image, before any time loop:

* `__call__(features, tokens, *, train)` -> logits [batch, time, vocab]:
  teacher forcing over the whole sequence (the input projection of every
  token in one matmul, then the cell's scan, then the output layer once).
* `prepare(features)` -> context: everything that does not change over time
  (image projections, attention keys), leaves [batch, ...].
* `init_carry(context)` -> the recurrent state at BOS, leaves [batch, ...].
* `step(carry, tokens, context)` -> (logits, carry): one step. `tokens` is
  [batch] or [batch, beam]; carry leaves carry the same leading dims; the
  context is broadcast over the beam axis, never copied.

`features` is the encoder output `(global [batch, dim], grid [batch, cells,
dim])`.
"""

from collections.abc import Callable

from flax import linen as nn
import jax
import jax.numpy as jnp

from capjax.models import cells

Features = tuple[jax.Array, jax.Array]


def rows(layer: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
  """Applies a Dense layer to x [..., in] as one [rows, in] matmul.

  On a [batch, time, in] input, XLA lowers the weight gradient as a matmul
  contracting two axes and ends up copying the [batch * time, vocab] output
  gradient into a transposed layout; as a plain 2-D matmul the gradient is
  computed once and read in place (the benchmark Show-and-Tell train step
  went from 62-64% to 76-80% of the machine's matmul rate).

  Args:
    layer: a Dense layer.
    x: [..., in].

  Returns:
    [..., out].
  """
  y = layer(x.reshape(-1, x.shape[-1]))
  return y.reshape(x.shape[:-1] + y.shape[-1:])


def expand_to_beam(context: jax.Array, tokens: jax.Array) -> jax.Array:
  """Inserts unit beam axes after the batch axis of a [batch, ...] context.

  Args:
    context: [batch, ...].
    tokens: [batch] or [batch, beam]: tells how many axes to insert.

  Returns:
    [batch, 1, ...] when tokens has a beam axis, else `context` unchanged.
  """
  extra = tokens.ndim - 1
  return context.reshape(context.shape[:1] + (1,) * extra + context.shape[1:])


class ShowTell(nn.Module):
  """Image embedding as the first input of the RNN (Vinyals et al., inject).

  The image is fed once, before BOS; the state after it starts the caption.
  """

  vocab_size: int
  embed_dim: int = 256
  hidden_dim: int = 512
  cell: str = 'lstm'
  dropout: float = 0.0
  fused: bool = True
  unroll: int = 1

  def setup(self):
    self.embed = nn.Embed(self.vocab_size, self.embed_dim)
    self.image_embed = nn.Dense(self.embed_dim)
    self.rnn = cells.create(
        self.cell, self.hidden_dim, fused=self.fused, unroll=self.unroll
    )
    self.drop = nn.Dropout(self.dropout)
    self.output = nn.Dense(self.vocab_size)

  def __call__(
      self,
      features: Features,
      tokens: jax.Array,
      *,
      train: bool,
      captions_per_image: int = 1,
  ):
    """tokens: [images * R, time] int32 -> logits [images * R, time, vocab].

    R = captions_per_image; the captions of an image are consecutive rows.
    """
    # Time-major up to the output layer: the projected inputs enter the
    # recurrence without a transpose; only the hidden states are swapped.
    image = self.image_embed(features[0])
    image = jnp.repeat(image, captions_per_image, axis=0)
    image = self.drop(image, deterministic=not train)
    words = self.drop(self.embed(tokens.T), deterministic=not train)
    inputs = jnp.concatenate([image[None], words], axis=0)
    carry = self.rnn.zero_carry(tokens.shape[:1])
    _, hidden = self.rnn.scan(
        carry, rows(self.rnn.project, inputs), time_major=True
    )
    hidden = jnp.swapaxes(hidden[1:], 0, 1)
    hidden = self.drop(hidden, deterministic=not train)
    return rows(self.output, hidden)

  def prepare(self, features: Features) -> dict:
    return {'image': self.image_embed(features[0])}

  def init_carry(self, context: dict):
    image = context['image']
    carry = self.rnn.zero_carry(image.shape[:1])
    carry, _ = self.rnn.step(carry, self.rnn.project(image))
    return carry

  def step(self, carry, tokens: jax.Array, context: dict):
    del context  # the image entered through the initial state
    carry, hidden = self.rnn.step(carry, self.rnn.project(self.embed(tokens)))
    return self.output(hidden), carry


class Merge(nn.Module):
  """The RNN reads words only; the image is merged before the softmax.

  The design of seed 000 (after Tanti et al.'s "merge" architecture): the
  projected image is added to (or concatenated with) the RNN output, then a
  ReLU layer and the output layer.
  """

  vocab_size: int
  embed_dim: int = 256
  hidden_dim: int = 512
  cell: str = 'lstm'
  dropout: float = 0.0
  merge: str = 'add'  # 'add' or 'concat'
  fused: bool = True
  unroll: int = 1

  def setup(self):
    if self.merge not in ('add', 'concat'):
      raise ValueError(
          f"model.merge must be 'add' or 'concat'; got {self.merge!r}."
      )
    self.embed = nn.Embed(self.vocab_size, self.embed_dim)
    self.image_proj = nn.Dense(self.hidden_dim)
    self.rnn = cells.create(
        self.cell, self.hidden_dim, fused=self.fused, unroll=self.unroll
    )
    self.drop = nn.Dropout(self.dropout)
    self.merged = nn.Dense(self.hidden_dim)
    self.output = nn.Dense(self.vocab_size)

  def _merge_and_predict(self, hidden, image, *, train: bool):
    if self.merge == 'add':
      merged = hidden + image
    else:
      merged = jnp.concatenate(
          [hidden, jnp.broadcast_to(image, hidden.shape)], -1
      )
    merged = rows(self.merged, self.drop(merged, deterministic=not train))
    merged = self.drop(nn.relu(merged), deterministic=not train)
    return rows(self.output, merged)

  def __call__(
      self,
      features: Features,
      tokens: jax.Array,
      *,
      train: bool,
      captions_per_image: int = 1,
  ):
    """tokens: [images * R, time] int32 -> logits [images * R, time, vocab].

    R = captions_per_image; the captions of an image are consecutive rows.
    """
    global_feature = self.drop(features[0], deterministic=not train)
    image = nn.relu(self.image_proj(global_feature))
    image = jnp.repeat(image, captions_per_image, axis=0)
    words = self.drop(self.embed(tokens.T), deterministic=not train)
    carry = self.rnn.zero_carry(tokens.shape[:1])
    _, hidden = self.rnn.scan(
        carry, rows(self.rnn.project, words), time_major=True
    )
    hidden = jnp.swapaxes(hidden, 0, 1)
    return self._merge_and_predict(hidden, image[:, None], train=train)

  def prepare(self, features: Features) -> dict:
    return {'image': nn.relu(self.image_proj(features[0]))}

  def init_carry(self, context: dict):
    return self.rnn.zero_carry(context['image'].shape[:1])

  def step(self, carry, tokens: jax.Array, context: dict):
    carry, hidden = self.rnn.step(carry, self.rnn.project(self.embed(tokens)))
    image = expand_to_beam(context['image'], tokens)
    return self._merge_and_predict(hidden, image, train=False), carry
