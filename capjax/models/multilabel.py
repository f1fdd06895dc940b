"""The multi-label tag classifier: an encoder, then one sigmoid per tag.

The hashtag seed's third model: instead of emitting tags one by one, score
every tag of the vocabulary at once from the global image feature and keep
the k most probable (or those above a threshold). Parameters are
`{'encoder': ..., 'head': ...}`; tag ids are the caption vocabulary's, and
the special ids (PAD, BOS, EOS, UNK) are never predicted.
"""

import dataclasses
from typing import Any

from flax import linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from capjax.data import vocab as vocab_lib
from capjax.models import encoders
from capjax.models import precision

Params = Any
NUM_SPECIAL = len(vocab_lib.SPECIAL_TOKENS)
NEG_INF = -1e9


class TagHead(nn.Module):
  """Global feature [batch, dim] -> tag logits [batch, vocab]."""

  vocab_size: int
  hidden_dim: int = 0  # 0: a linear layer over the feature
  dtype: str = 'float32'  # matmul compute dtype (model.dtype)

  @nn.compact
  def __call__(self, feature: jax.Array) -> jax.Array:
    x = feature
    if self.hidden_dim:
      x = nn.relu(precision.dense(self.hidden_dim, self.dtype,
                                  name='hidden')(x))
    return precision.dense(self.vocab_size, self.dtype, name='logits')(x)


def targets_from_tokens(tokens: jax.Array, vocab_size: int) -> jax.Array:
  """Multi-hot tag targets of encoded tag sequences.

  Args:
    tokens: [batch, len] or [batch, captions, len] int32 (BOS, tags, EOS,
      PAD); every caption of an image counts.
    vocab_size: V.

  Returns:
    [batch, V] float32, 1 where the image has the tag; 0 on special ids.
  """
  tokens = tokens.reshape(tokens.shape[0], -1)
  hot = jax.nn.one_hot(tokens, vocab_size, dtype=jnp.float32).max(axis=1)
  return hot.at[:, :NUM_SPECIAL].set(0.0)


@dataclasses.dataclass(frozen=True)
class TagClassifier:
  """Encoder + tag head.

  Attributes:
    encoder: pure encoder (`init`, `apply`).
    head: the `TagHead`.
    frozen_encoder: no gradient reaches the encoder's params
      (`model.encoder.trainable=False`): the backward pass stops at the CNN.
  """

  encoder: encoders.Encoder
  head: TagHead
  frozen_encoder: bool = False

  def init(self, rng: jax.Array, images: jax.Array) -> Params:
    encoder_rng, head_rng = jax.random.split(rng)
    encoder_params = self.encoder.init(encoder_rng, images)
    feature, _ = self.encoder.apply(encoder_params, images)
    return {'encoder': encoder_params,
            'head': self.head.init(head_rng, feature)['params']}

  def logits(self, params: Params, images: jax.Array) -> jax.Array:
    """images [batch, ...] -> tag logits [batch, V] (specials at -1e9)."""
    encoder_params = params['encoder']
    if self.frozen_encoder:  # XLA builds no backward pass through the CNN
      encoder_params = jax.lax.stop_gradient(encoder_params)
    feature, _ = self.encoder.apply(encoder_params, images)
    logits = self.head.apply({'params': params['head']}, feature)
    return logits.at[:, :NUM_SPECIAL].set(NEG_INF)

  def top_tags(self, params: Params, images: jax.Array,
               k: int) -> tuple[jax.Array, jax.Array]:
    """The k most probable tags: (ids [batch, k] int32, probs [batch, k])."""
    probs = jax.nn.sigmoid(self.logits(params, images))
    values, ids = jax.lax.top_k(probs, k)
    return ids.astype(jnp.int32), values


def create(config: ml_collections.ConfigDict, vocab_size: int) -> TagClassifier:
  """Builds the classifier of `config.model` for a tag vocabulary size."""
  dtype = config.model.get('dtype', 'float32')
  return TagClassifier(
      encoder=encoders.create(config.model.encoder, dtype),
      head=TagHead(vocab_size=vocab_size,
                   hidden_dim=config.model.tag_hidden_dim, dtype=dtype),
      frozen_encoder=not config.model.encoder.get('trainable', True))
