"""Show-and-Tell (image injected first) and merge captioners."""

from flax import linen as nn
import jax
import jax.numpy as jnp

from capjax.models import cells
from capjax.models import precision
from capjax.models.captioners import base


class ShowTell(nn.Module):
  """Image embedding as the first input of the RNN (Vinyals et al., inject).

  The image is fed once, before BOS; the state after it starts the caption.
  """

  WORD_EMBEDDING = 'embed'  # its word lookup (model.embedding_init)
  # What `head_inputs` and the output layer use (`Captioner.nll_sums`).
  HEAD_PARAMS = ('output',)

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
    self.image_embed = precision.dense(self.embed_dim, self.dtype)
    self.rnn = cells.create(
        self.cell, self.hidden_dim, fused=self.fused, unroll=self.unroll,
        dtype=self.dtype,
    )
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
    outputs = self.outputs(
        features, tokens, train=train, captions_per_image=captions_per_image
    )
    return self.head(outputs, train=train)

  def head(self, outputs: dict, *, train: bool) -> jax.Array:
    """outputs {'hidden': [..., hidden]} -> logits [..., vocab]."""
    return base.rows(self.output, self.head_inputs(outputs, train=train))

  def head_inputs(self, outputs: dict, *, train: bool) -> jax.Array:
    """What the output layer `output` reads: [..., hidden]."""
    return self.drop(outputs['hidden'], deterministic=not train)

  def outputs(
      self,
      features: base.Features,
      tokens: jax.Array,
      *,
      train: bool,
      captions_per_image: int = 1,
  ) -> dict:
    """What the output layer reads: {'hidden': [images * R, time, hidden]}."""
    # Time-major up to the output layer: the projected inputs enter the
    # recurrence without a transpose; only the hidden states are swapped.
    image = self.image_embed(features[0])
    image = jnp.repeat(image, captions_per_image, axis=0)
    image = self.drop(image, deterministic=not train)
    words = self.drop(self.embed(tokens.T), deterministic=not train)
    inputs = jnp.concatenate([image[None], words], axis=0)
    carry = self.rnn.zero_carry(tokens.shape[:1])
    _, hidden = self.rnn.scan(
        carry, base.rows(self.rnn.project, inputs, batch_axis=1),
        time_major=True
    )
    return {'hidden': jnp.swapaxes(hidden[1:], 0, 1)}

  def prepare(self, features: base.Features) -> dict:
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

  WORD_EMBEDDING = 'embed'  # its word lookup (model.embedding_init)
  HEAD_PARAMS = ('merged', 'output')  # what `head_inputs` and `output` use

  vocab_size: int
  embed_dim: int = 256
  hidden_dim: int = 512
  cell: str = 'lstm'
  dropout: float = 0.0
  merge: str = 'add'  # 'add' or 'concat'
  fused: bool = True
  unroll: int = 1
  dtype: str = 'float32'  # matmul compute dtype (model.dtype)

  def setup(self):
    if self.merge not in ('add', 'concat'):
      raise ValueError(
          f"model.merge must be 'add' or 'concat'; got {self.merge!r}."
      )
    self.embed = nn.Embed(self.vocab_size, self.embed_dim)
    self.image_proj = precision.dense(self.hidden_dim, self.dtype)
    self.rnn = cells.create(
        self.cell, self.hidden_dim, fused=self.fused, unroll=self.unroll,
        dtype=self.dtype,
    )
    self.drop = nn.Dropout(self.dropout)
    self.merged = precision.dense(self.hidden_dim, self.dtype)
    self.output = precision.dense(self.vocab_size, self.dtype)

  def _merge_and_predict(self, hidden, image, *, train: bool):
    return base.rows(self.output, self._merged(hidden, image, train=train))

  def _merged(self, hidden, image, *, train: bool):
    """The input of the output layer: [..., hidden_dim]."""
    if self.merge == 'add':
      merged = hidden + image
    else:
      merged = jnp.concatenate(
          [hidden, jnp.broadcast_to(image, hidden.shape)], -1
      )
    merged = base.rows(self.merged, self.drop(merged, deterministic=not train))
    return self.drop(nn.relu(merged), deterministic=not train)

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
    outputs = self.outputs(
        features, tokens, train=train, captions_per_image=captions_per_image
    )
    return self.head(outputs, train=train)

  def head(self, outputs: dict, *, train: bool) -> jax.Array:
    """{'hidden': [..., hidden], 'image': [..., hidden]} -> [..., vocab].

    The image may have unit axes where the hidden states have time.
    """
    return self._merge_and_predict(
        outputs['hidden'], outputs['image'], train=train
    )

  def head_inputs(self, outputs: dict, *, train: bool) -> jax.Array:
    """What the output layer `output` reads: [..., hidden_dim]."""
    return self._merged(outputs['hidden'], outputs['image'], train=train)

  def outputs(
      self,
      features: base.Features,
      tokens: jax.Array,
      *,
      train: bool,
      captions_per_image: int = 1,
  ) -> dict:
    """{'hidden': [images * R, time, hidden], 'image': [images * R, 1, H]}."""
    global_feature = self.drop(features[0], deterministic=not train)
    image = nn.relu(self.image_proj(global_feature))
    image = jnp.repeat(image, captions_per_image, axis=0)
    words = self.drop(self.embed(tokens.T), deterministic=not train)
    carry = self.rnn.zero_carry(tokens.shape[:1])
    _, hidden = self.rnn.scan(
        carry, base.rows(self.rnn.project, words, batch_axis=1),
        time_major=True
    )
    return {'hidden': jnp.swapaxes(hidden, 0, 1), 'image': image[:, None]}

  def prepare(self, features: base.Features) -> dict:
    return {'image': nn.relu(self.image_proj(features[0]))}

  def init_carry(self, context: dict):
    return self.rnn.zero_carry(context['image'].shape[:1])

  def step(self, carry, tokens: jax.Array, context: dict):
    carry, hidden = self.rnn.step(carry, self.rnn.project(self.embed(tokens)))
    image = base.expand_to_beam(context['image'], tokens)
    return self._merge_and_predict(hidden, image, train=False), carry
