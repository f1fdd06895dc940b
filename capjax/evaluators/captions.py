"""Decode a split, score the captions with the COCO metrics, draw a gallery.

Writes, under `<workdir>/eval/`:
  <split>_captions.json      COCO results format: [{"image_id", "caption"}]
  <split>_gallery.png/.html  the first images with their captions (and the
                             attention maps of an attention captioner)
Its metrics: the COCO toolkit's keys of `config.eval.metrics`, the scores
only some datasets have (`caption_accuracy` on shapes) and `num_images`.
"""

import functools
import os
import time

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from capjax import atomic_write
from capjax import decoding
from capjax import parallel
from capjax import progress
from capjax import report
from capjax.data import pipeline
from capjax.data import shapes
from capjax.data import vocab as vocab_lib
from capjax.metrics import coco

# Datasets that know the truth of their images, and the score it gives.
CHECKED_DATASETS = {'shapes': 'caption_accuracy'}


def decode_images(config: ml_collections.ConfigDict, vocab: vocab_lib.Vocab,
                  model, params, images: jax.Array,
                  rng: jax.Array) -> jax.Array:
  """Captions a batch of images with the configured decoder.

  Args:
    config: the experiment config (its `eval` section picks the decoder).
    vocab: the vocabulary (for word-based constraints).
    model: the captioner (`capjax.models.captioning.Captioner`).
    params: its parameters.
    images: [batch, ...] images.
    rng: key for the sampling decoder (unused by the others).

  Returns:
    [batch, max_len] int32 token ids of the best caption, PAD after EOS.
  """
  method, settings = decoding.from_config(config, vocab.word_id)
  step_fn, init_carry = model.decoder_fns(params, images)
  sequences, _ = decoding.decode(
      step_fn, init_carry, method=method,
      rng=rng if method == 'sample' else None, **settings,
  )
  return sequences[:, 0]


def attention_maps(model, params, images: jax.Array, sequences: jax.Array):
  """Attention weights of the decoder over its own caption.

  Teacher forcing on the generated caption reproduces the decoding steps, so
  this gives the weights each word was generated with.

  Args:
    model: the captioner.
    params: its parameters.
    images: [batch, ...].
    sequences: [batch, len] generated ids (no BOS).

  Returns:
    [batch, len, cells] float32, or None when the model has no attention.
  """
  bos = jnp.full(sequences.shape[:1] + (1,), vocab_lib.BOS_ID, jnp.int32)
  inputs = jnp.concatenate([bos, sequences[:, :-1]], axis=1)
  _, intermediates = model.logits(params, images, inputs, train=False)
  return intermediates.get('attention')


def dataset_metrics(dataset: str, source, results: dict[int, str]) -> dict:
  """Scores only some datasets have: `caption_accuracy` for shapes."""
  if dataset not in CHECKED_DATASETS or not results:
    return {}
  return {
      'caption_accuracy': shapes.caption_accuracy(
          results, pipeline.scenes(source))
  }


class Captions:
  """Decodes every image of a split and scores the captions."""

  def __init__(self, config, task, model, meta, split, mesh):
    self.config, self.model, self.split, self.mesh = config, model, split, mesh
    self.vocab = task.vocab_of(meta)
    self.task, self.meta = task, meta
    parallel.check_batch_size(
        config.eval.batch_size, mesh.size, 'config.eval.batch_size')
    self.source = pipeline.open_split(config.dataset, split)
    replicated = parallel.replicated_sharding(mesh)
    sharded = parallel.data_sharding(mesh)
    self._decode = jax.jit(
        functools.partial(decode_images, config, self.vocab, model),
        in_shardings=(replicated, sharded, replicated),
        out_shardings=sharded,
    )
    self._attention = jax.jit(functools.partial(attention_maps, model))
    self.results: dict[int, str] = {}
    self.gallery: dict[str, list] = {}

  @staticmethod
  def metric_names(config: ml_collections.ConfigDict) -> set[str]:
    names = {'num_images'}
    for metric in config.eval.metrics:
      names |= set(coco.KEYS.get(metric, ()))
    if config.dataset.name in CHECKED_DATASETS:
      names.add(CHECKED_DATASETS[config.dataset.name])
    return names

  def run(self, params) -> dict[str, float]:
    start = time.perf_counter()
    e = self.config.eval
    params = parallel.replicate(params, self.mesh)
    rng = jax.random.key(self.config.seed + 1)
    results: dict[int, str] = {}
    gallery: dict[str, list] = {'images': [], 'ids': [], 'attention': []}
    total = min(len(self.source), e.max_examples or len(self.source))
    bar = progress.bar(total, 'images', f'captions {self.split}')
    for batch_index, batch in enumerate(
        self.task.eval_batches(self.config, self.meta, self.split)):
      if e.max_examples and len(results) >= e.max_examples:
        break
      images = parallel.shard_batch({'image': batch['image']}, self.mesh)
      with jax.set_mesh(self.mesh):  # see `parallel.constrain_batch`
        sequences = self._decode(params, images['image'],
                                 jax.random.fold_in(rng, batch_index))
      host = parallel.to_host({
          'sequences': sequences,
          'image_id': parallel.shard_batch(
              {'i': batch['image_id'].astype(np.int32)}, self.mesh)['i'],
          'mask': parallel.shard_batch({'m': batch['mask']}, self.mesh)['m'],
      })
      captioned = len(results)
      for ids, image_id, real in zip(
          host['sequences'], host['image_id'], host['mask']):
        if real and not (e.max_examples and len(results) >= e.max_examples):
          results[int(image_id)] = self.vocab.decode(ids)
      bar.update(len(results) - captioned)
      if len(gallery['ids']) < e.gallery_size:
        self._collect_gallery(gallery, batch, host, params)
    bar.close()
    refs = pipeline.references(self.source)
    refs = {image_id: refs[image_id] for image_id in results}
    metrics = coco.score(refs, results, metrics=tuple(e.metrics))
    metrics.update(
        dataset_metrics(self.config.dataset.name, self.source, results))
    metrics['num_images'] = float(len(results))
    logging.info('Captioned %s: %d images in %.1fs.', self.split,
                 len(results), time.perf_counter() - start)
    self.results, self.gallery = results, gallery
    return metrics

  def _collect_gallery(self, gallery, batch, host, params):
    """Keeps the first real images of this host's batch, with attention.

    `host` holds the gathered global batch; this host's rows come first on
    process 0, which is the one that writes the gallery.
    """
    local = len(batch['image'])
    take = [i for i, real in enumerate(host['mask'][:local]) if real]
    take = take[: self.config.eval.gallery_size - len(gallery['ids'])]
    if not take:
      return
    images = np.asarray(batch['image'])[take]
    alpha = self._attention(params, images, host['sequences'][take])
    if images.ndim != 4 and hasattr(self.source, 'photo'):
      # Precomputed features: the gallery shows the photos they came from.
      index = {int(i): n for n, i in enumerate(self.source.image_ids)}
      images = np.stack([self.source.photo(index[int(host['image_id'][i])])
                         for i in take])
    gallery['images'].extend(list(images))
    gallery['ids'].extend(int(host['image_id'][i]) for i in take)
    if alpha is not None:
      gallery['attention'].extend(list(np.asarray(alpha)))

  def write(self, workdir: str) -> None:
    out_dir = os.path.join(workdir, 'eval')
    os.makedirs(out_dir, exist_ok=True)
    atomic_write.write_json(
        os.path.join(out_dir, f'{self.split}_captions.json'),
        [{'image_id': i, 'caption': c}
         for i, c in sorted(self.results.items())],
    )
    correct = None
    if self.config.dataset.name in CHECKED_DATASETS:
      scenes = pipeline.scenes(self.source)
      correct = lambda i: shapes.caption_is_correct(self.results[i], scenes[i])
    ids = self.gallery.get('ids', [])
    report.write_gallery(
        os.path.join(out_dir, f'{self.split}_gallery'),
        images=self.gallery.get('images', []),
        captions=[self.results[i] for i in ids],
        correct=[correct(i) if correct else None for i in ids],
        attention=self.gallery.get('attention') or None,
        title=f'{self.config.model.decoder}/{self.config.model.cell} on '
              f'{self.config.dataset.name} {self.split}',
    )
