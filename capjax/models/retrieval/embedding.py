"""An embedding model: an encoder, an embedder, and the capability protocol.

An embedding model (DESIGN.md) gives `embed_images`, `embed_texts` and
`similarity`; the image and text embeddings are computed once per item and
every pair is then scored by `similarity` alone (one matmul for the common
space, one batched program for the alignment score). Parameters are
`{'encoder': ..., 'embedder': ...}`. Embedders by `retrieval.model`:

  alignment     seed 003: BRNN words, grid regions, S = sum_t max_i v_i . s_t
  common_space  seed 004: (Bi)LSTM sentence, projected image, cosine
"""

import dataclasses
from typing import Any, Callable, Protocol

from flax import linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from capjax.models import encoders
from capjax.models.retrieval import alignment
from capjax.models.retrieval import common_space
from capjax.models.retrieval import ranking

Params = Any


class EmbeddingModelProtocol(Protocol):
  """The embedding-model capability (DESIGN.md)."""

  def embed_images(self, params: Params, images: jax.Array) -> jax.Array:
    """images [K, ...] -> image embeddings, leading axis K."""

  def embed_texts(self, params: Params, tokens: jax.Array) -> jax.Array:
    """tokens [L, T] int32 -> text embeddings, leading axis L."""

  def similarity(self, images: jax.Array, texts: jax.Array) -> jax.Array:
    """Embeddings of K images and L texts -> scores [K, L] float32."""


# retrieval.model -> (embedder class, its pairwise similarity).
REGISTRY: dict[str, tuple[type[nn.Module], Callable]] = {
    'alignment': (alignment.Alignment, alignment.similarity),
    'common_space': (common_space.CommonSpace, common_space.similarity),
}


@dataclasses.dataclass(frozen=True)
class EmbeddingModel:
  """Encoder + embedder.

  Attributes:
    encoder: pure image encoder (`init`, `apply`).
    embedder: Flax module with `embed_images(features)` and
      `embed_texts(tokens)`.
    score: the pairwise similarity of the embedder's embeddings.
    objective: the ranking loss it is trained with (`ranking.Objective`).
    frozen_encoder: no gradient reaches the encoder's params
      (`model.encoder.trainable=False`): the backward pass stops at the CNN.
  """

  encoder: encoders.Encoder
  embedder: nn.Module
  score: Callable[[jax.Array, jax.Array], jax.Array]
  objective: ranking.Objective = ranking.Objective()
  frozen_encoder: bool = False

  def init(self, rng: jax.Array, images: jax.Array, tokens: jax.Array):
    """images [B, ...]; tokens [B, T] int32 -> params."""
    encoder_rng, embedder_rng = jax.random.split(rng)
    encoder_params = self.encoder.init(encoder_rng, images)
    features = self.encoder.apply(encoder_params, images)
    embedder_params = self.embedder.init(
        embedder_rng, features, tokens)['params']
    return {'encoder': encoder_params, 'embedder': embedder_params}

  def embed_images(self, params: Params, images: jax.Array) -> jax.Array:
    """images [K, ...] -> [K, D] (common space) or [K, regions, D]."""
    encoder_params = params['encoder']
    if self.frozen_encoder:  # XLA builds no backward pass through the CNN
      encoder_params = jax.lax.stop_gradient(encoder_params)
    features = self.encoder.apply(encoder_params, images)
    return self.embedder.apply({'params': params['embedder']}, features,
                               method='embed_images')

  def embed_texts(self, params: Params, tokens: jax.Array) -> jax.Array:
    """tokens [L, T] int32 -> [L, D] (common space) or [L, T, D] words."""
    return self.embedder.apply({'params': params['embedder']}, tokens,
                               method='embed_texts')

  def similarity(self, images: jax.Array, texts: jax.Array) -> jax.Array:
    """[K, ...] and [L, ...] embeddings -> [K, L] float32 scores."""
    return self.score(images, texts).astype(jnp.float32)


def create(config: ml_collections.ConfigDict,
           vocab_size: int) -> EmbeddingModel:
  """Builds the embedding model of `config.retrieval` and `config.model`."""
  settings = config.retrieval
  if settings.model not in REGISTRY:
    raise ValueError(f'Unknown retrieval model {settings.model!r}: choose one '
                     f'of {sorted(REGISTRY)} (config key retrieval.model).')
  embedder_class, score = REGISTRY[settings.model]
  kwargs = dict(vocab_size=vocab_size, embed_dim=settings.embed_dim,
                word_dim=config.model.embed_dim,
                hidden_dim=config.model.hidden_dim,
                dtype=config.model.get('dtype', 'float32'))
  if settings.model == 'common_space':
    kwargs.update(text_encoder=settings.text_encoder,
                  num_layers=settings.num_layers, pooling=settings.pooling,
                  fused=config.model.fused)
  objective = ranking.Objective(kind=settings.loss, margin=settings.margin,
                                logit_scale=settings.logit_scale)
  return EmbeddingModel(encoder=encoders.create(config.model.encoder,
                                                 kwargs['dtype']),
                        embedder=embedder_class(**kwargs), score=score,
                        objective=objective,
                        frozen_encoder=not config.model.encoder.get(
                            'trainable', True))
