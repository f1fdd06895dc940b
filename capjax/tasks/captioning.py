"""Captioning: next-token likelihood of a caption given an image.

Every captioner (Show-and-Tell, merge, soft attention, and the families that
plug into `capjax.models.captioners`) trains through this task. Its meta is
the vocabulary of the training split and, when the encoder starts from
converted weights (`model.encoder.weights`), their arch, origin, fields and
SHA-256, so a resume with other weights is refused.

Config fields it reads: `dataset.*` (which split files, `max_len`,
`min_count`, `train_captions_per_image`, the caption cleaning of
`pipeline.open_split` and `rare_words`), `model.*` (through
`capjax.models.captioning.create`; `embedding_init` and
`embedding_trainable` through `initial_values` and `frozen`),
`train.batch_size`, `train.prefetch`, `train.attention_lambda` (the doubly
stochastic attention regulariser) and `seed`.
"""

import functools

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from capjax import losses
from capjax.data import caption_cleaning
from capjax.data import pipeline
from capjax.data import rare_words
from capjax.data import vocab as vocab_lib
from capjax.data import word_vectors
from capjax.models import captioning
from capjax.models.encoders import checkpoint

DEFAULT_EVALUATORS = ('captions', 'perplexity')
VOCAB_KEY = 'vocabulary'  # the meta key of the vocabulary JSON
STOP_WORDS_KEY = 'stop_words'  # the meta key of the stop-word list used
RARE_WORDS = rare_words.CHOICES  # dataset.rare_words: become UNK | removed
WEIGHTS_KEY = 'encoder_weights'  # the meta key of the converted weights


def vocab_of(meta: dict) -> vocab_lib.Vocab:
  """The vocabulary a captioning meta carries."""
  return vocab_lib.Vocab.from_json(meta[VOCAB_KEY], origin='the run meta')


def meta_of(vocab: vocab_lib.Vocab) -> dict:
  """The meta of a model trained with `vocab`."""
  return {VOCAB_KEY: vocab.to_json()}


def synthetic_meta(vocab_size: int) -> dict:
  """The meta of a vocabulary of `vocab_size` ids (specials included).

  For benchmarks and tests that size a model without a dataset.
  """
  words = [f'w{i}' for i in range(vocab_size - len(vocab_lib.SPECIAL_TOKENS))]
  return meta_of(vocab_lib.Vocab(words))


def open_data(config: ml_collections.ConfigDict):
  """Train batches of (image, captions) and the training-split vocabulary.

  Returns:
    `(batches, meta)`; batches are `pipeline.train_batches` of this host.
    The meta records the encoder's converted weights (read whole, so a
    damaged checkpoint stops the run before it writes anything).
  """
  d = config.dataset
  weights = config.model.encoder.get('weights', '')
  weights_meta = checkpoint.describe(weights) if weights else None
  source = pipeline.open_split(d, 'train')
  vocab = vocab_lib.Vocab.build(
      pipeline.all_captions(source), min_count=d.min_count)
  source = without_rare_words(config, vocab, source)

  def batches(start_step: int):
    return pipeline.train_batches(
        source, vocab,
        batch_size=config.train.batch_size,
        max_len=d.max_len,
        captions_per_image=d.train_captions_per_image,
        seed=config.seed,
        start_step=start_step,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
        prefetch=config.train.prefetch,
    )

  meta = meta_of(vocab)
  if d.get('stop_words', False):  # NLTK's list or capjax's: machines differ
    meta[STOP_WORDS_KEY] = caption_cleaning.list_name(True)
  if weights_meta:
    meta[WEIGHTS_KEY] = weights_meta
  return batches, meta


def without_rare_words(config: ml_collections.ConfigDict,
                       vocab: vocab_lib.Vocab, source):
  """The split with out-of-vocabulary words removed (`rare_words='drop'`);
  `rare_words.as_trained`, the one function every encoding path shares."""
  return rare_words.as_trained(config.dataset, vocab, source)


def eval_batches(config: ml_collections.ConfigDict, meta: dict, split: str):
  """Every image of `split` once with its references; the last batch masked.

  Yields `pipeline.eval_batches` of this host: 'image', 'tokens' [b, R,
  max_len + 1], 'caption_mask', 'mask', 'image_id'.
  """
  vocab = vocab_of(meta)
  return pipeline.eval_batches(
      without_rare_words(
          config, vocab, pipeline.open_split(config.dataset, split)), vocab,
      batch_size=config.eval.batch_size,
      max_len=config.dataset.max_len,
      captions_per_image=config.dataset.captions_per_image,
      process_index=jax.process_index(),
      process_count=jax.process_count(),
  )


def create_model(config: ml_collections.ConfigDict,
                 meta: dict) -> captioning.Captioner:
  return captioning.create(config, len(vocab_of(meta)),
                           encoder_weights=meta.get(WEIGHTS_KEY))


def targets(batch: dict) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Splits tokens into decoder inputs, targets and weights.

  Args:
    batch: 'tokens' int32 [batch, len + 1] or [batch, captions, len + 1]; with
      a caption axis, 'caption_mask' [batch, captions] marks real captions.
      An optional 'mask' [batch] marks real (not padding) examples.

  Returns:
    inputs, targets: int32 [n, len]; weights: float32 [n, len], where n is
    batch (or batch * captions).
  """
  tokens = batch['tokens']
  example_mask = batch.get('mask')
  if tokens.ndim == 3:
    caption_mask = batch['caption_mask']
    if example_mask is not None:
      caption_mask = caption_mask * example_mask[:, None]
    caption_mask = caption_mask.reshape(-1)
    tokens = tokens.reshape((-1, tokens.shape[-1]))
  else:
    caption_mask = (
        example_mask
        if example_mask is not None
        else jnp.ones(tokens.shape[:1], jnp.float32)
    )
  inputs, target_ids = tokens[:, :-1], tokens[:, 1:]
  weights = (target_ids != vocab_lib.PAD_ID).astype(jnp.float32)
  return inputs, target_ids, weights * caption_mask[:, None]


def init_params(model: captioning.Captioner, rng: jax.Array, batch: dict):
  inputs, _, _ = targets(batch)
  return model.init(rng, batch['image'][:1], inputs[:1])


def initial_values(config: ml_collections.ConfigDict, meta: dict,
                   model: captioning.Captioner, batch: dict) -> dict | None:
  """Word vectors for the embedding (`model.embedding_init`), or None.

  Read once on the host, streaming the file; `apply_initial_values` puts
  them into freshly initialised params.

  Args:
    config: the experiment config.
    meta: the run meta (its vocabulary).
    model: the captioner.
    batch: a training batch (for the params' shapes).

  Returns:
    None without `model.embedding_init`, else {'rows': [vocab, width]
    float32, 'found': [vocab] bool}; the special tokens and the words the
    file lacks are not found and keep their random init.
  """
  path = config.model.get('embedding_init', '')
  if not path:
    return None
  where = model.word_embedding_path()
  shapes = jax.eval_shape(functools.partial(init_params, model),
                          jax.random.key(0), batch)
  vocab_size, width = functools.reduce(
      lambda tree, key: tree[key], where, shapes).shape
  vocab = vocab_of(meta)
  specials = len(vocab_lib.SPECIAL_TOKENS)
  dim_key = ('model.embed_dim' if width == config.model.embed_dim
             else 'model.hidden_dim')
  rows, found = word_vectors.read_rows(
      path, vocab.words[specials:], width, dim_key=dim_key)
  missing = vocab_size - specials - int(found.sum())
  logging.info('model.embedding_init=%s: %d of %d vocabulary words found; '
               '%d keep their random init.', path, int(found.sum()),
               vocab_size - specials, missing)
  return {
      'rows': np.concatenate([np.zeros([specials, width], np.float32), rows]),
      'found': np.concatenate([np.zeros([specials], bool), found]),
  }


def apply_initial_values(model: captioning.Captioner, params,
                         values: dict):
  """Fresh params with the word vectors of `initial_values` (jit-able)."""
  return model.with_word_embedding(params, values['rows'], values['found'])


def frozen(config: ml_collections.ConfigDict, model: captioning.Captioner):
  """A predicate on param paths naming what the optimizer must not move.

  Returns:
    None when everything trains, else `path -> bool` (the word embedding
    with `model.embedding_trainable=False`).
  """
  if config.model.get('embedding_trainable', True):
    return None
  where = model.word_embedding_path()
  return lambda path: tuple(path[:len(where)]) == where


def totals(model: captioning.Captioner, params, batch: dict, *, train: bool,
           rng: jax.Array | None = None) -> dict[str, jax.Array]:
  """Sums over a batch: nll, tokens, captions and the attention regulariser.

  Args:
    model: the captioner.
    params: its parameters.
    batch: 'image' [batch, ...] and the fields of `targets`.
    train: dropout on.
    rng: the dropout key (train only).

  Returns:
    'nll_sum', 'tokens', 'captions', 'attention_sum': [] float32 sums.
  """
  inputs, target_ids, weights = targets(batch)
  tokens = batch['tokens']
  # Logits only at real tokens when config model.output_capacity > 0.
  nll_sum, token_count, intermediates = model.nll_sums(
      params, batch['image'], inputs, target_ids, weights, train=train,
      dropout_rng=rng,
      captions_per_image=tokens.shape[1] if tokens.ndim == 3 else 1,
  )
  out = {
      'nll_sum': nll_sum,
      'tokens': token_count,
      'captions': jnp.sum(weights[:, 0]),
      'attention_sum': jnp.zeros([], jnp.float32),
  }
  if 'attention' in intermediates:
    out['attention_sum'] = losses.doubly_stochastic(
        intermediates['attention'], weights
    )
  return out


def loss(local: dict, global_totals: dict,
         config: ml_collections.ConfigDict) -> jax.Array:
  """Mean nll per real token plus the weighted attention regulariser."""
  tokens = jnp.maximum(global_totals['tokens'], 1.0)
  captions = jnp.maximum(global_totals['captions'], 1.0)
  return (local['nll_sum'] / tokens
          + config.train.attention_lambda * local['attention_sum'] / captions)


def summarize(global_totals: dict,
              config: ml_collections.ConfigDict) -> dict[str, jax.Array]:
  """'loss', 'nll' (per token) and 'attention_penalty' (per caption)."""
  nll = global_totals['nll_sum'] / jnp.maximum(global_totals['tokens'], 1.0)
  penalty = global_totals['attention_sum'] / jnp.maximum(
      global_totals['captions'], 1.0)
  return {
      'loss': nll + config.train.attention_lambda * penalty,
      'nll': nll,
      'attention_penalty': penalty,
  }
