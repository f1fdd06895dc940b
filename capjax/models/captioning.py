"""A captioning model: an encoder, a captioner, and the functions around them.

`Captioner` bundles a pure encoder (`capjax.models.encoders`) with a Flax
captioner module and exposes what training, evaluation and decoding need:
`init`, `logits` (teacher forcing), `nll_sums` (the loss's sums through the
padding-free output layer) and `decoder_fns` (a step function for
`capjax.decoding`). Parameters are `{'encoder': ..., 'decoder': ...}`, float32
whatever `model.dtype` computes in.

With `model.encoder.weights` the encoder is built from the converted
checkpoint's fields (its preprocessing follows the weights' origin), and
`pretrained_params` reads those weights for the loop to start from. A frozen
encoder (`model.encoder.trainable=False`) has its params behind
`stop_gradient`, so no backward pass through the CNN is built. Batch norm
stays in inference mode either way: the converters fold it into a fixed
per-channel scale and bias, which fine-tuning trains like any weight; batch
statistics are never computed or updated.
"""

import dataclasses
import math
from typing import Any

from flax import linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from capjax import losses
from capjax.models import captioners
from capjax.models import encoders
from capjax.models import output_layer
from capjax.models import precision
from capjax.models.encoders import checkpoint

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
    output_capacity: share of a batch's positions the output layer of
      `nll_sums` computes (0 = all; see `losses.output_capacity`).
    frozen_encoder: no gradient reaches the encoder's params.
    encoder_weights: an encoder checkpoint directory to start from ('' =
      random init).
    encoder_sha256: the fingerprint of those weights in the run's meta.
    output_groups: blocks of examples that pick their padding-free rows
      apart: the data-parallel devices a batch is sharded over, so that each
      computes the rows of its own examples (`losses.real_positions`).
  """

  encoder: encoders.Encoder
  decoder: nn.Module
  blind: bool = False
  output_capacity: float = 0.0
  frozen_encoder: bool = False
  encoder_weights: str = ''
  encoder_sha256: str = ''
  output_groups: int = 1

  def init(self, rng: jax.Array, images: jax.Array, tokens: jax.Array):
    """images: [batch, ...]; tokens: [batch, time] int32 -> params.

    The encoder's params are random here; `pretrained_params` holds the
    converted ones that replace them when `encoder_weights` is set.
    """
    encoder_rng, decoder_rng = jax.random.split(rng)
    encoder_params = self.encoder.init(encoder_rng, images)
    features = self.encoder.apply(encoder_params, images)
    decoder_params = self.decoder.init(
        decoder_rng, features, tokens, train=False
    )['params']
    return {'encoder': encoder_params, 'decoder': decoder_params}

  def word_embedding_path(self) -> tuple[str, str, str]:
    """Where the word lookup table [vocab, width] is in the params.

    Raises:
      ValueError: the captioner has no word embedding (one line).
    """
    name = getattr(type(self.decoder), 'WORD_EMBEDDING', None)
    if name is None:
      with_one = sorted(k for k, v in DECODERS.items()
                        if getattr(v, 'WORD_EMBEDDING', None))
      raise ValueError(
          f'The {type(self.decoder).__name__} captioner has no word '
          'embedding, so model.embedding_init and model.embedding_trainable '
          f'do not apply: use one of {with_one} or leave them at their '
          'defaults.')
    return ('decoder', name, 'embedding')

  def with_word_embedding(self, params: Params, rows: jax.Array,
                          found: jax.Array) -> Params:
    """The params with the word embedding's `found` rows set to `rows`.

    Args:
      params: model parameters.
      rows: [vocab, width] float32, e.g. GloVe vectors.
      found: [vocab] bool; rows without a vector keep their values.

    Returns:
      A new params tree (the other leaves are the same arrays).
    """
    decoder, name, leaf = self.word_embedding_path()
    table = params[decoder][name][leaf]
    if rows.shape != table.shape:
      raise ValueError(f'Word vectors of shape {rows.shape} for an embedding '
                       f'of shape {table.shape}.')
    new_table = jnp.where(found[:, None], rows.astype(table.dtype), table)
    module = {**params[decoder][name], leaf: new_table}
    return {**params, decoder: {**params[decoder], name: module}}

  def pretrained_params(self) -> dict | None:
    """{'encoder': converted float32 params (numpy)}, or None if random.

    Read from `encoder_weights` and checked against `encoder_sha256`; they
    replace the subtree of the same name of `init`'s params.
    """
    if not self.encoder_weights:
      return None
    return {'encoder': checkpoint.load_params(self.encoder_weights,
                                              self.encoder_sha256)}

  def encode(self, params: Params, images: jax.Array):
    """images -> (global [batch, dim], grid [batch, cells, dim])."""
    if self.blind:
      images = jnp.zeros_like(images)
    encoder_params = params['encoder']
    if self.frozen_encoder:  # XLA builds no backward pass through the CNN
      encoder_params = jax.lax.stop_gradient(encoder_params)
    return self.encoder.apply(encoder_params, images)

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
    return self._teacher_forced(
        params, images, tokens, train=train, dropout_rng=dropout_rng,
        captions_per_image=captions_per_image, method='__call__',
    )

  def _teacher_forced(self, params, images, tokens, *, train, dropout_rng,
                      captions_per_image, method):
    features = self.encode(params, images)
    rngs = {'dropout': dropout_rng} if train and dropout_rng is not None else {}
    out, state = self.decoder.apply(
        {'params': params['decoder']}, features, tokens, train=train,
        captions_per_image=captions_per_image, rngs=rngs,
        mutable=['intermediates'], method=method,
    )
    intermediates = jax.tree.map(
        lambda x: x[0] if isinstance(x, tuple) else x,
        dict(state.get('intermediates', {})),
        is_leaf=lambda x: isinstance(x, tuple),
    )
    return out, intermediates

  def nll_sums(
      self,
      params: Params,
      images: jax.Array,
      inputs: jax.Array,
      targets: jax.Array,
      weights: jax.Array,
      *,
      train: bool,
      dropout_rng: jax.Array | None = None,
      captions_per_image: int = 1,
  ):
    """Teacher-forced nll sum, with logits only at the real tokens.

    The output layer (the largest matmul of a captioner) runs on a static
    number of rows, `losses.output_capacity(batch * time,
    self.output_capacity)`, holding the hidden states of the real positions
    only. If a batch has more real positions than rows, that batch takes the
    padded path instead (a `lax.cond`: same value, no position is ever
    dropped, nothing recompiles). With `output_capacity` 0 only the padded
    path is built. The rows are picked per block of `output_groups`
    consecutive examples (one block per data-parallel device), so a sharded
    step computes only its own examples' rows on each device.

    Captioners with a `head_inputs` method (the input of their Dense layer
    `output`) train through `output_layer.nll`, the output layer fused with
    the loss; the others through their logits and `losses.cross_entropy`.

    Args:
      params: model parameters.
      images: [batch, ...] images or features.
      inputs: [batch * captions_per_image, time] int32 input tokens.
      targets: [batch * captions_per_image, time] int32 next tokens.
      weights: [batch * captions_per_image, time] float32, 0 on padding.
      train: dropout on.
      dropout_rng: key for dropout when training.
      captions_per_image: captions per image (consecutive rows).

    Returns:
      `(nll_sum [] float32, weight_sum [] float32, intermediates)`.
    """
    if not hasattr(self.decoder, 'outputs'):
      # A captioner without the outputs/head split: logits everywhere.
      logits, intermediates = self.logits(
          params, images, inputs, train=train, dropout_rng=dropout_rng,
          captions_per_image=captions_per_image)
      nll_sum, count = losses.cross_entropy(logits, targets, weights)
      return nll_sum, count, intermediates
    outputs, intermediates = self._teacher_forced(
        params, images, inputs, train=train, dropout_rng=dropout_rng,
        captions_per_image=captions_per_image, method='outputs',
    )
    rngs = {'dropout': dropout_rng} if train and dropout_rng is not None else {}

    def head_nll_sum(decoder_params, rows, row_targets, row_weights):
      if hasattr(self.decoder, 'head_inputs'):
        # The output layer fused with the loss (`output_layer.nll`).
        x = self.decoder.apply(
            {'params': decoder_params}, rows, train=train, rngs=rngs,
            method='head_inputs',
        )
        layer = decoder_params['output']
        nll = output_layer.nll(
            x.reshape(-1, x.shape[-1]), layer['kernel'], layer['bias'],
            row_targets.reshape(-1), precision.compute_dtype(
                getattr(self.decoder, 'dtype', 'float32')),
        )
        return jnp.sum(nll * row_weights.reshape(-1))
      logits = self.decoder.apply(
          {'params': decoder_params}, rows, train=train, rngs=rngs,
          method='head',
      )
      return losses.cross_entropy(logits, row_targets, row_weights)[0]

    def padded(decoder_params, outputs):
      return head_nll_sum(decoder_params, outputs, targets, weights)

    positions = weights.size
    groups = math.gcd(max(self.output_groups, 1), weights.shape[0])
    capacity = groups * losses.output_capacity(
        positions // groups, self.output_capacity)
    if capacity >= positions:
      return padded(params['decoder'], outputs), jnp.sum(weights), intermediates
    index, row_weights, fits = losses.real_positions(weights, capacity, groups)
    example, step = jnp.divmod(index, weights.shape[1])  # within each group

    def gather(x):
      """[batch, time or 1, ...] -> [capacity, ...], group by group."""
      x = x.reshape((groups, -1) + x.shape[1:])
      # A leaf with a unit time axis (e.g. a merge image) is per example.
      at = (example, step if x.shape[2] > 1 else jnp.zeros_like(step))
      rows = jax.vmap(lambda block, e, s: block[e, s])(x, *at)
      return rows.reshape((-1,) + rows.shape[2:])

    def padding_free(decoder_params, outputs):
      rows = jax.tree.map(gather, outputs)
      return head_nll_sum(
          decoder_params, rows, gather(targets[..., None])[:, 0],
          row_weights.reshape(-1),
      )

    # Only the head's parameters go through the switch: it returns the
    # gradients of what it is given, zeros for the parameters the head does
    # not use (most of the model) written and scaled every step otherwise.
    decoder_params = params['decoder']
    names = getattr(self.decoder, 'HEAD_PARAMS', None)
    if names is not None:
      decoder_params = {k: decoder_params[k] for k in names
                        if k in decoder_params}
    nll_sum = losses.switch_loss(
        fits, padding_free, padded, decoder_params, outputs
    )
    return nll_sum, jnp.sum(weights), intermediates

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


def create_encoder(config: ml_collections.ConfigDict, dtype: str = 'float32',
                   weights: dict | None = None) -> encoders.Encoder:
  """The encoder of `config` (model.encoder), or of converted weights.

  Args:
    config: the `model.encoder` section.
    dtype: the compute dtype (model.dtype).
    weights: `checkpoint.describe` of `config.weights` (from the run meta):
      the encoder takes the checkpoint's fields, not the config's.
  """
  if not weights:
    return encoders.create(config, dtype)
  if weights['arch'] != config.name:
    raise ValueError(
        f'The encoder weights are a {weights["arch"]} checkpoint but '
        f'model.encoder.name is {config.name!r}: set model.encoder.name='
        f'{weights["arch"]} or other weights.')
  fields = {k: tuple(v) if isinstance(v, list) else v  # JSON lists
            for k, v in weights['fields'].items()}
  return encoders.create(
      ml_collections.ConfigDict({**fields, 'name': weights['arch']}), dtype)


def _encoder_settings(model_config, weights) -> dict:
  """Captioner fields of the encoder's weights and trainability."""
  encoder_config = model_config.encoder
  return dict(
      frozen_encoder=not encoder_config.get('trainable', True),
      encoder_weights=encoder_config.get('weights', '') if weights else '',
      encoder_sha256=weights['sha256'] if weights else '',
  )


def create(config: ml_collections.ConfigDict, vocab_size: int,
           encoder_weights: dict | None = None) -> Captioner:
  """Builds the captioner of `config.model` for a vocabulary size.

  `encoder_weights` is the run meta's record of `model.encoder.weights`
  (`checkpoint.describe`), None for a randomly initialised encoder.
  """
  model_config = config.model
  # Configs saved before these fields existed compute in float32, padded.
  dtype = model_config.get('dtype', 'float32')
  precision.compute_dtype(dtype)  # a one-line error if unknown
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
        dtype=dtype,
    )
    return Captioner(
        encoder=create_encoder(model_config.encoder, dtype, encoder_weights),
        decoder=decoder,
        blind=model_config.blind,
        **_encoder_settings(model_config, encoder_weights),
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
  decoder_class = DECODERS[model_config.decoder]
  if 'dtype' in {f.name for f in dataclasses.fields(decoder_class)}:
    kwargs['dtype'] = dtype  # captioners without it compute in float32
  if model_config.decoder == 'merge':
    kwargs['merge'] = model_config.merge
  elif model_config.decoder == 'soft_attention':
    kwargs['attention_dim'] = model_config.attention_dim
  return Captioner(
      encoder=create_encoder(model_config.encoder, dtype, encoder_weights),
      decoder=decoder_class(**kwargs),
      blind=model_config.blind,
      output_capacity=model_config.get('output_capacity', 0.0),
      **_encoder_settings(model_config, encoder_weights),
      output_groups=data_parallel_devices(config),
  )


def data_parallel_devices(config: ml_collections.ConfigDict) -> int:
  """The devices a jit train step shards each batch over (1 under pmap)."""
  parallel = config.get('parallel', None)
  if parallel is None or parallel.get('mode', 'jit') != 'jit':
    return 1
  return parallel.get('num_devices', 0) or jax.device_count()
