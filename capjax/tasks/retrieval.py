"""The retrieval task: rank image-text pairs in a joint embedding space.

Batches hold images with one caption each; the model embeds both sides and
the loss ranks each true pair above the other pairs of the batch, both ways
(`capjax.models.retrieval.ranking`). Two captions of one image in a batch
are never treated as negatives of each other (their `image_id`s match).

Sums and counts across devices: `totals` scores every image against every
text of the batch it is given. Under the default `jit` over a global mesh,
that batch is the GLOBAL batch (the embeddings are sharded along the batch
axis and XLA gathers the text embeddings for the [B, B] score matrix), so
the negatives and the loss are those of one device whatever the number of
devices or hosts; `loss` divides the loss sum by the global query count.
Under `pmap`, each device would score its own shard only (fewer negatives),
which changes the objective: use `jit` for this task.
"""

from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import ml_collections

from capjax.data import pipeline
from capjax.data import vocab as vocab_lib
from capjax.models.retrieval import embedding
from capjax.models.retrieval import ranking

DEFAULT_EVALUATORS = ('retrieval',)
META_FORMAT = 'capjax.retrieval_meta'


def open_split(config: ml_collections.ConfigDict, split: str):
  """One split of the configured dataset (prepared on first use)."""
  return pipeline.open_split(config.dataset, split)


def vocab_of(meta: dict) -> vocab_lib.Vocab:
  """The vocabulary a retrieval meta carries."""
  if meta.get('format') != META_FORMAT:
    raise ValueError('The metadata is not a capjax retrieval meta (no '
                     f'"format": "{META_FORMAT}"): was it written by the '
                     'retrieval task?')
  return vocab_lib.Vocab.from_json(meta['vocab'], 'the retrieval meta')


def open_data(config: ml_collections.ConfigDict
              ) -> tuple[Callable[[int], Iterator[dict]], dict[str, Any]]:
  """Train batches and the meta (the training split's vocabulary).

  Returns:
    `(batches, meta)`: `batches(start_step)` yields this process's slice of
    {'image': [b, H, W, 3] uint8, 'tokens': [b, max_len + 1] int32,
    'image_id': [b] int64} for global steps start_step, start_step + 1, ...
  """
  train = open_split(config, 'train')
  vocab = vocab_lib.Vocab.build(pipeline.all_captions(train),
                                min_count=config.dataset.min_count)
  meta = {'format': META_FORMAT, 'vocab': vocab.to_json()}

  def batches(start_step: int = 0):
    return pipeline.train_batches(
        train, vocab, batch_size=config.train.batch_size,
        max_len=config.dataset.max_len, seed=config.seed,
        start_step=start_step, process_index=jax.process_index(),
        process_count=jax.process_count(), prefetch=config.train.prefetch)

  return batches, meta


def create_model(config: ml_collections.ConfigDict,
                 meta: dict) -> embedding.EmbeddingModel:
  return embedding.create(config, len(vocab_of(meta)))


def init_params(model: embedding.EmbeddingModel, rng: jax.Array,
                batch: dict) -> Any:
  return model.init(rng, jnp.asarray(batch['image']),
                    jnp.asarray(batch['tokens']))


def scores_of(model: embedding.EmbeddingModel, params, batch: dict
              ) -> jax.Array:
  """The in-batch score matrix [B, B]: image i (rows) against text j."""
  images = model.embed_images(params, batch['image'])
  texts = model.embed_texts(params, batch['tokens'])
  return model.similarity(images, texts)


def totals(model: embedding.EmbeddingModel, params, batch: dict, *,
           train: bool, rng: jax.Array | None = None
           ) -> dict[str, jax.Array]:
  """Sums over the batch: 'loss_sum', 'hits' (true pair ranked first) and
  'queries' (2 per pair), each [] float32."""
  del train, rng  # no dropout in these models
  scores = scores_of(model, params, batch)
  image_id = batch['image_id']
  same = image_id[:, None] == image_id[None, :]
  loss_sum, queries = model.objective(scores, same)
  return {'loss_sum': loss_sum, 'queries': queries,
          'hits': ranking.in_batch_hits(scores, same)}


def loss(totals_: dict, global_totals: dict,
         config: ml_collections.ConfigDict | None = None) -> jax.Array:
  """The local loss sum over the global number of queries: [] float32."""
  del config
  return totals_['loss_sum'] / jax.lax.stop_gradient(
      jnp.maximum(global_totals['queries'], 1.0))


def summarize(totals_: dict, config: ml_collections.ConfigDict | None = None
              ) -> dict[str, jax.Array]:
  """What is logged: the mean loss and the in-batch R@1 (percent).

  Works on device arrays (inside jit) and on host ones alike.
  """
  del config
  queries = jnp.maximum(totals_['queries'], 1.0)
  return {'loss': totals_['loss_sum'] / queries,
          'in_batch_r1': 100.0 * totals_['hits'] / queries}
