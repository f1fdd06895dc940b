"""Decode a split with a trained model, score it, and write the results.

Writes, under `<workdir>/eval/`:
  <split>_captions.json   COCO results format: [{"image_id", "caption"}]
  <split>_metrics.json    BLEU-1..4, ROUGE_L, CIDEr (METEOR when asked and
                          Java is present), perplexity, and dataset-specific
                          scores (caption_accuracy for shapes)
  <split>_gallery.png/.html  a picture of the first images with their captions
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
from capjax import report
from capjax.data import pipeline
from capjax.data import shapes
from capjax.data import vocab as vocab_lib
from capjax.metrics import coco
from capjax.metrics import perplexity as perplexity_lib
from capjax.models import captioning


def open_split(config: ml_collections.ConfigDict, split: str):
  """Opens one split of the configured dataset (preparing it on first use)."""
  d = config.dataset
  return pipeline.load_source(
      d.name,
      split,
      data_dir=d.data_dir or None,
      manual_dir=d.manual_dir or None,
      builder_config=d.builder_config or None,
      image_size=d.image_size,
  )


def decode_len(config: ml_collections.ConfigDict) -> int:
  return config.eval.max_decode_len or config.dataset.max_len


def decode_settings(config: ml_collections.ConfigDict, vocab: vocab_lib.Vocab):
  """The decoder named by `config.eval.decode` and its keyword settings.

  Returns:
    `(method, settings)` for `decoding.decode`.
  """
  e = config.eval
  constraints = decoding.Constraints(
      suppress_unk=e.suppress_unk,
      no_repeat=e.no_repeat,
      block_trigrams=e.block_trigrams,
      no_end_after=tuple(vocab.word_id(w) for w in e.no_end_after),
      min_len=e.min_len,
  )
  settings = dict(max_len=decode_len(config), constraints=constraints,
                  length_penalty=e.length_penalty, length_norm=e.length_norm)
  if e.decode == 'beam':
    settings.update(beam_size=e.beam_size)
  elif e.decode == 'diverse_beam':
    settings.update(beam_size=e.beam_size, num_groups=e.num_groups,
                    diversity=e.diversity_penalty)
  elif e.decode == 'sample':
    settings.update(temperature=e.temperature, top_k=e.top_k, top_p=e.top_p)
  elif e.decode != 'greedy':
    raise ValueError(
        f'Unknown config.eval.decode {e.decode!r}: choose one of '
        f'{decoding.METHODS}.'
    )
  return e.decode, settings


def decode_images(
    config: ml_collections.ConfigDict,
    vocab: vocab_lib.Vocab,
    model: captioning.Captioner,
    params,
    images: jax.Array,
    rng: jax.Array,
) -> jax.Array:
  """Captions a batch of images with the configured decoder.

  Args:
    config: the experiment config (its `eval` section picks the decoder).
    vocab: the vocabulary (for word-based constraints).
    model: the captioner.
    params: its parameters.
    images: [batch, ...] images.
    rng: key for the sampling decoder (unused by the others).

  Returns:
    [batch, max_len] int32 token ids of the best caption, PAD after EOS.
  """
  method, settings = decode_settings(config, vocab)
  step_fn, init_carry = model.decoder_fns(params, images)
  sequences, _ = decoding.decode(
      step_fn, init_carry, method=method,
      rng=rng if method == 'sample' else None, **settings,
  )
  return sequences[:, 0]


def attention_maps(model, params, images, sequences):
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


def caption_checker(dataset: str, source):
  """`check(image_id, caption) -> bool` for datasets that can judge captions.

  Only `shapes` knows the truth of its images; others return None.
  """
  if dataset != 'shapes':
    return None
  scenes = pipeline.scenes(source)
  return lambda image_id, caption: shapes.caption_is_correct(
      caption, scenes[image_id])


def dataset_metrics(dataset: str, source, results: dict[int, str]) -> dict:
  """Scores only some datasets have: `caption_accuracy` for shapes."""
  if dataset != 'shapes' or not results:
    return {}
  return {
      'caption_accuracy': shapes.caption_accuracy(
          results, pipeline.scenes(source)
      )
  }


class _Compiled:
  """The jitted functions of one evaluation, sharded over the mesh."""

  def __init__(self, config, vocab, model, mesh):
    from capjax import train  # pylint: disable=g-import-not-at-top

    replicated = parallel.replicated_sharding(mesh)
    sharded = parallel.data_sharding(mesh)
    self.decode = jax.jit(
        functools.partial(decode_images, config, vocab, model),
        in_shardings=(replicated, sharded, replicated),
        out_shardings=sharded,
    )
    self.totals = jax.jit(
        functools.partial(train.eval_step, model=model),
        in_shardings=(replicated, sharded),
        out_shardings=replicated,
    )
    self.attention = jax.jit(functools.partial(attention_maps, model))


def evaluate_split(
    config: ml_collections.ConfigDict,
    model: captioning.Captioner,
    params,
    vocab: vocab_lib.Vocab,
    split: str,
    workdir: str,
    *,
    mesh: jax.sharding.Mesh | None = None,
    write: bool = True,
) -> dict[str, float]:
  """Decodes and scores one split.

  Args:
    config: the experiment config.
    model: the captioner.
    params: its parameters (host or replicated arrays).
    vocab: the vocabulary the model was trained with.
    split: 'test', 'validation', ...
    workdir: results go to `<workdir>/eval/`.
    mesh: devices to decode on (default: all).
    write: write captions, metrics and the gallery.

  Returns:
    The metrics, keyed as the COCO toolkit does plus 'perplexity' and
    dataset-specific ones.
  """
  start = time.perf_counter()
  mesh = mesh or parallel.make_mesh(config.parallel.num_devices)
  e = config.eval
  parallel.check_batch_size(e.batch_size, mesh.size, 'config.eval.batch_size')
  source = open_split(config, split)
  compiled = _Compiled(config, vocab, model, mesh)
  params = parallel.replicate(params, mesh)
  rng = jax.random.key(config.seed + 1)
  results: dict[int, str] = {}
  gallery: dict[str, list] = {'images': [], 'ids': [], 'attention': []}
  totals = None
  batches = pipeline.eval_batches(
      source, vocab,
      batch_size=e.batch_size,
      max_len=config.dataset.max_len,
      captions_per_image=config.dataset.captions_per_image,
      process_index=jax.process_index(),
      process_count=jax.process_count(),
  )
  seen = 0
  for batch_index, batch in enumerate(batches):
    if e.max_examples and seen >= e.max_examples:
      break
    batch = dict(batch)
    device_batch = parallel.shard_batch(
        {k: batch[k] for k in ('image', 'tokens', 'caption_mask', 'mask')},
        mesh,
    )
    sequences = compiled.decode(
        params, device_batch['image'], jax.random.fold_in(rng, batch_index)
    )
    batch_totals = compiled.totals(params, device_batch)
    totals = batch_totals if totals is None else jax.tree.map(
        jnp.add, totals, batch_totals)
    host = parallel.to_host({
        'sequences': sequences,
        'image_id': parallel.shard_batch(
            {'i': batch['image_id'].astype(np.int32)}, mesh)['i'],
        'mask': device_batch['mask'],
    })
    for ids, image_id, real in zip(
        host['sequences'], host['image_id'], host['mask']
    ):
      if real and not (e.max_examples and seen >= e.max_examples):
        results[int(image_id)] = vocab.decode(ids)
        seen += 1
    if write and len(gallery['ids']) < e.gallery_size:
      _collect_gallery(gallery, e.gallery_size, batch, host,
                       compiled.attention, params)
  totals = jax.tree.map(float, jax.device_get(totals))
  refs = pipeline.references(source)
  refs = {image_id: refs[image_id] for image_id in results}
  metrics = coco.score(refs, results, metrics=tuple(e.metrics))
  metrics['perplexity'] = float(perplexity_lib.corpus_perplexity(
      -totals['nll_sum'], totals['tokens']
  ))
  metrics.update(dataset_metrics(config.dataset.name, source, results))
  metrics['num_images'] = float(len(results))
  logging.info(
      'Evaluated %s: %d images in %.1fs.', split, len(results),
      time.perf_counter() - start,
  )
  if write and jax.process_index() == 0:
    _write(config, source, split, workdir, results, metrics, gallery)
  return metrics


def _collect_gallery(gallery, size, batch, host, attention_fn, params):
  """Keeps the first real images of this host's batch, with attention maps.

  `host` holds the gathered global batch; this host's rows come first on
  process 0, which is the one that writes the gallery.
  """
  local = len(batch['image'])
  take = [i for i, real in enumerate(host['mask'][:local]) if real]
  take = take[: size - len(gallery['ids'])]
  if not take:
    return
  images = np.asarray(batch['image'])[take]
  alpha = attention_fn(params, images, host['sequences'][take])
  gallery['images'].extend(list(images))
  gallery['ids'].extend(int(host['image_id'][i]) for i in take)
  if alpha is not None:
    gallery['attention'].extend(list(np.asarray(alpha)))


def _write(config, source, split, workdir, results, metrics, gallery):
  out_dir = os.path.join(workdir, 'eval')
  os.makedirs(out_dir, exist_ok=True)
  atomic_write.write_json(
      os.path.join(out_dir, f'{split}_captions.json'),
      [{'image_id': i, 'caption': c} for i, c in sorted(results.items())],
  )
  atomic_write.write_json(
      os.path.join(out_dir, f'{split}_metrics.json'), metrics
  )
  correct = caption_checker(config.dataset.name, source)
  report.write_gallery(
      os.path.join(out_dir, f'{split}_gallery'),
      images=gallery['images'],
      captions=[results[i] for i in gallery['ids']],
      correct=[correct(i, results[i]) if correct else None
               for i in gallery['ids']],
      attention=gallery['attention'] or None,
      title=f'{config.model.decoder}/{config.model.cell} on '
            f'{config.dataset.name} {split}',
  )
