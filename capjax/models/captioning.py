"""A captioning model: an encoder, a captioner, and the functions around them.

`Captioner` bundles a pure encoder (`capjax.models.encoders`) with a Flax
captioner module and exposes what training, evaluation and decoding need:
`init`, `logits` (teacher forcing) and `decoder` (a step function for
`capjax.decoding`). Parameters are `{'encoder': ..., 'decoder': ...}`.
"""

import dataclasses
from typing import Any

from flax import linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from capjax.models import captioners
from capjax.models import encoders

Params = Any

DECODERS = captioners.REGISTRY


@dataclasses.dataclass(frozen=True)
class Captioner:
  """Encoder + captioner.

  Attributes:
    encoder: pure encoder (`init`, `apply`).
    decoder: Flax captioner module (`__call__`, `prepare`, `init_carry`,
      `step`).
    blind: zero every image before encoding (the blind baseline: a captioner
      that cannot see, to measure how much the image matters).
  """

  encoder: encoders.Encoder
  decoder: nn.Module
  blind: bool = False

  def init(self, rng: jax.Array, images: jax.Array, tokens: jax.Array):
    """images: [batch, ...]; tokens: [batch, time] int32 -> params."""
    encoder_rng, decoder_rng = jax.random.split(rng)
    encoder_params = self.encoder.init(encoder_rng, images)
    features = self.encoder.apply(encoder_params, images)
    decoder_params = self.decoder.init(
        decoder_rng, features, tokens, train=False
    )['params']
    return {'encoder': encoder_params, 'decoder': decoder_params}

  def encode(self, params: Params, images: jax.Array):
    """images -> (global [batch, dim], grid [batch, cells, dim])."""
    if self.blind:
      images = jnp.zeros_like(images)
    return self.encoder.apply(params['encoder'], images)

  def logits(
      self,
      params: Params,
      images: jax.Array,
      tokens: jax.Array,
      *,
      train: bool,
      dropout_rng: jax.Array | None = None,
      captions_per_image: int = 1,
  ):
    """Teacher forcing.

    Args:
      params: model parameters.
      images: [batch, ...] images or features.
      tokens: [batch * captions_per_image, time] int32 input tokens (BOS
        first); the captions of an image are consecutive rows.
      train: dropout on.
      dropout_rng: key for dropout when training.
      captions_per_image: each image is encoded once for all its captions.

    Returns:
      `(logits [batch, time, vocab] float32, intermediates)`; intermediates
      holds what the decoder sowed (e.g. `attention` [batch, time, cells]).
    """
    features = self.encode(params, images)
    rngs = {'dropout': dropout_rng} if train and dropout_rng is not None else {}
    logits, state = self.decoder.apply(
        {'params': params['decoder']}, features, tokens, train=train,
        captions_per_image=captions_per_image, rngs=rngs,
        mutable=['intermediates'],
    )
    intermediates = jax.tree.map(
        lambda x: x[0] if isinstance(x, tuple) else x,
        dict(state.get('intermediates', {})),
        is_leaf=lambda x: isinstance(x, tuple),
    )
    return logits, intermediates

  def decoder_fns(self, params: Params, images: jax.Array, method='step'):
    """Builds what `capjax.decoding` needs for a batch of images.

    The image context (projections, attention keys) is computed here, once.

    Args:
      params: model parameters.
      images: [batch, ...].
      method: the decoder method to step with ('step', or e.g.
        'step_with_attention' to also get attention weights).

    Returns:
      `(step_fn, init_carry)`: `step_fn(tokens, carry) -> (logits, carry)`
      with tokens [batch] or [batch, beam]; init_carry leaves [batch, ...].
    """
    variables = {'params': params['decoder']}
    context = self.decoder.apply(
        variables, self.encode(params, images), method='prepare'
    )
    init_carry = self.decoder.apply(variables, context, method='init_carry')

    def step_fn(tokens, carry):
      out = self.decoder.apply(variables, carry, tokens, context, method=method)
      return out[0], out[1]

    return step_fn, init_carry


def create(config: ml_collections.ConfigDict, vocab_size: int) -> Captioner:
  """Builds the captioner of `config.model` for a vocabulary size."""
  model_config = config.model
  if model_config.decoder not in DECODERS:
    raise ValueError(
        f'Unknown decoder {model_config.decoder!r}: choose one of '
        f'{sorted(DECODERS)} (config key model.decoder).'
    )
  if model_config.decoder == 'mrnn':
    mrnn_config = model_config.get('mrnn', None)
    if mrnn_config is None:
      raise ValueError('model.decoder=mrnn needs the model.mrnn block of '
                       'capjax/config_base.py (variant, multimodal_dim).')
    decoder = DECODERS['mrnn'](
        vocab_size=vocab_size,
        embed_dim=model_config.embed_dim,
        hidden_dim=model_config.hidden_dim,
        multimodal_dim=mrnn_config.multimodal_dim,
        variant=mrnn_config.variant,
        dropout=model_config.dropout,
        fused=model_config.fused,
        unroll=model_config.unroll,
    )
    return Captioner(
        encoder=encoders.create(model_config.encoder),
        decoder=decoder,
        blind=model_config.blind,
    )
  kwargs = dict(
      vocab_size=vocab_size,
      embed_dim=model_config.embed_dim,
      hidden_dim=model_config.hidden_dim,
      cell=model_config.cell,
      dropout=model_config.dropout,
      fused=model_config.fused,
      unroll=model_config.unroll,
  )
  if model_config.decoder == 'merge':
    kwargs['merge'] = model_config.merge
  elif model_config.decoder == 'soft_attention':
    kwargs['attention_dim'] = model_config.attention_dim
  return Captioner(
      encoder=encoders.create(model_config.encoder),
      decoder=DECODERS[model_config.decoder](**kwargs),
      blind=model_config.blind,
  )
