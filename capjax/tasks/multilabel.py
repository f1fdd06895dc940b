"""The multi-label tag task: one sigmoid per tag of a hashtag dataset.

Reads any caption dataset whose captions are tag sequences (the hashtag
datasets of `capjax.data.hashtag_builders`) through the caption pipeline;
the tag vocabulary is the caption vocabulary of the training split, and an
image's targets are the tags of its captions (`multilabel.
targets_from_tokens`). The loss is the summed binary cross-entropy over
every tag, divided by the global number of images.
"""

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from capjax.data import pipeline
from capjax.data import vocab as vocab_lib
from capjax.models import multilabel

DEFAULT_EVALUATORS = ('tags',)


def open_split(config: ml_collections.ConfigDict, split: str):
  """One split of the configured dataset (prepared on first use)."""
  return pipeline.open_split(config.dataset, split)


def open_data(config: ml_collections.ConfigDict, *,
              process_index: int | None = None,
              process_count: int | None = None):
  """(batches, meta): `batches(start_step)` yields this process's slices.

  Returns:
    batches: start_step -> iterator of {'image': [b, H, W, 3] uint8,
      'tokens': [b, max_len + 1] int32, 'image_id': [b] int64}; global step
      s is a pure function of (config.seed, s).
    meta: {'task': 'multilabel', 'vocab': the tag vocabulary's JSON}.
  """
  if process_index is None:
    process_index, process_count = jax.process_index(), jax.process_count()
  train = open_split(config, 'train')
  vocab = vocab_lib.Vocab.build(pipeline.all_captions(train),
                                min_count=config.dataset.min_count)

  def batches(start_step: int = 0):
    return pipeline.train_batches(
        train, vocab, batch_size=config.train.batch_size,
        max_len=config.dataset.max_len, seed=config.seed,
        start_step=start_step, process_index=process_index,
        process_count=process_count, prefetch=config.train.prefetch)

  return batches, {'task': 'multilabel', 'vocab': vocab.to_json()}


def vocab_of(meta: dict[str, Any]) -> vocab_lib.Vocab:
  return vocab_lib.Vocab.from_json(meta['vocab'], origin='task meta')


def create_model(config: ml_collections.ConfigDict,
                 meta: dict[str, Any]) -> multilabel.TagClassifier:
  return multilabel.create(config, len(vocab_of(meta)))


def init_params(model: multilabel.TagClassifier, rng: jax.Array,
                batch: dict[str, np.ndarray]):
  return model.init(rng, jnp.asarray(batch['image']))


def totals(model: multilabel.TagClassifier, params, batch, *, train: bool,
           rng: jax.Array | None = None) -> dict[str, jax.Array]:
  """Sums over the local batch.

  Args:
    model: the classifier.
    params: its parameters.
    batch: 'image' [b, ...], 'tokens' [b, (R,) len + 1] int32, optional
      'mask' [b] (0 for padding).
    train: unused (the classifier has no dropout).
    rng: unused.

  Returns:
    {'bce_sum': [] summed BCE over images and tags, 'images': [] count,
     'hits_sum': [] true tags among each image's top tag, summed}.
  """
  del train, rng
  logits = model.logits(params, batch['image'])
  targets = multilabel.targets_from_tokens(batch['tokens'], logits.shape[-1])
  mask = batch.get('mask')
  mask = jnp.ones(logits.shape[:1]) if mask is None else mask
  real = jnp.arange(logits.shape[-1]) >= multilabel.NUM_SPECIAL
  bce = optax.sigmoid_binary_cross_entropy(logits, targets) * real
  top = jnp.argmax(logits, axis=-1)
  hit = jnp.take_along_axis(targets, top[:, None], axis=-1)[:, 0]
  return {'bce_sum': jnp.sum(bce.sum(-1) * mask),
          'images': jnp.sum(mask).astype(jnp.float32),
          'hits_sum': jnp.sum(hit * mask)}


def loss(local_totals, global_totals, config=None) -> jax.Array:
  """Local BCE sum over the global image count (same on 1 or N devices)."""
  del config
  images = jax.lax.stop_gradient(global_totals['images'])
  return local_totals['bce_sum'] / jnp.maximum(images, 1.0)


def summarize(summed, config=None) -> dict[str, jax.Array]:
  """Mean loss and top-1 precision (traceable: the loop calls it in jit)."""
  del config
  images = jnp.maximum(summed['images'], 1.0)
  return {'loss': summed['bce_sum'] / images,
          'top1_precision': summed['hits_sum'] / images}
