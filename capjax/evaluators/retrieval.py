"""The retrieval evaluator: embed a split once, score every pair, rank.

Each image and each reference caption of the split is embedded once (jitted
per batch shape, batches sharded over the mesh); all pairs are then scored
by `scoring.pairwise_scores` (one sharded matmul, or the alignment model's
chunked program). Metrics, from `capjax.metrics.retrieval`:
R@1/5/10, median and mean rank both ways and rsum; with `retrieval.folds`
N, the means over N folds too (COCO 1K: 5 folds of the 5K test images), as
`fold_*`; when the dataset has classes (`simplicity`: each image's
`label`; `shapes`: the shape of the largest object of each image), seed
004's per-class precision and recall at K (`retrieval.class_k`), as
`i2t_p@K/<class>` etc. and their class means.
"""

import json
import os
from typing import Any

import jax
import ml_collections
import numpy as np

from capjax import atomic_write
from capjax import parallel
from capjax import progress
from capjax import retrieval_report
from capjax.data import pipeline
from capjax.metrics import retrieval as retrieval_metrics
from capjax.models.retrieval import alignment
from capjax.models.retrieval import scoring

GALLERY_QUERIES = 6  # text queries shown in the gallery
GALLERY_TOP = 5  # images shown per query


def dominant_shapes(source) -> np.ndarray | None:
  """[num_images] str: the shape of each image's largest object (shapes).

  None for a dataset without scenes (no classes to report).
  """
  scenes = source.scenes
  if scenes is None:
    return None
  labels = []
  for scene in scenes:
    objects = json.loads(scene)['objects']
    areas = [(o['bbox'][2] - o['bbox'][0]) * (o['bbox'][3] - o['bbox'][1])
             for o in objects]
    labels.append(objects[int(np.argmax(areas))]['shape'])
  return np.asarray(labels)


def image_labels(source) -> np.ndarray | None:
  """[num_images] str: each image's class, or None for a classless split.

  A dataset's own `label`s (simplicity) come first; else the shapes of
  `dominant_shapes`.
  """
  labels = getattr(source, 'labels', None)
  if labels is not None:
    return np.asarray(labels)
  return dominant_shapes(source)


def class_metrics(scores: np.ndarray, image_labels: np.ndarray,
                  caption_image: np.ndarray, k: int) -> dict[str, float]:
  """Seed 004's per-class precision and recall at K, both ways.

  Args:
    scores: [num_images, num_captions].
    image_labels: [num_images] class of each image.
    caption_image: [num_captions] image of each caption (its class).
    k: items retrieved per query.

  Returns:
    {'i2t_p@K/<class>', 'i2t_r@K/<class>', 't2i_...', and the means over
    classes 'i2t_p@K', 'i2t_r@K', 't2i_p@K', 't2i_r@K'}: percentages.
  """
  caption_labels = image_labels[caption_image]
  out = {}
  for direction, s, queries, gallery in (
      ('i2t', scores, image_labels, caption_labels),
      ('t2i', scores.T, caption_labels, image_labels)):
    per_class = retrieval_metrics.class_precision_recall_at_k(
        s, queries, gallery, k)
    for label, (p, r) in sorted(per_class.items()):
      out[f'{direction}_p@{k}/{label}'] = 100.0 * p
      out[f'{direction}_r@{k}/{label}'] = 100.0 * r
    out[f'{direction}_p@{k}'] = 100.0 * float(
        np.mean([p for p, _ in per_class.values()]))
    out[f'{direction}_r@{k}'] = 100.0 * float(
        np.mean([r for _, r in per_class.values()]))
  return out


class Evaluator:
  """Retrieval metrics of one split (see the module docstring)."""

  def __init__(self, config: ml_collections.ConfigDict, task, model, meta:
               dict, split: str, mesh: jax.sharding.Mesh | None = None):
    self.config = config
    self.model = model
    self.split = split
    self.mesh = mesh or parallel.make_mesh(config.parallel.num_devices)
    self.vocab = task.vocab_of(meta)
    self.source = task.open_split(config, split)
    parallel.check_batch_size(config.eval.batch_size, self.mesh.size,
                              'config.eval.batch_size')
    replicated = parallel.replicated_sharding(self.mesh)
    sharded = parallel.data_sharding(self.mesh)
    self._embed_images = jax.jit(model.embed_images,
                                 in_shardings=(replicated, sharded),
                                 out_shardings=sharded)
    self._embed_texts = jax.jit(model.embed_texts,
                                in_shardings=(replicated, sharded),
                                out_shardings=sharded)
    self._chunk = (config.retrieval.score_chunk
                   if config.retrieval.model == 'alignment' else 0)
    self.labels = image_labels(self.source)
    image = np.zeros((1,) + self.source.image_shape + (3,), np.uint8)
    # Grid cells of the encoder (the alignment's last region is the image).
    self._num_cells = jax.eval_shape(
        lambda p, x: model.encoder.apply(p, x)[1],
        jax.eval_shape(model.encoder.init, jax.random.key(0), image),
        image).shape[1]
    self._last: dict[str, Any] = {}

  def embed_split(self, params) -> dict[str, np.ndarray]:
    """Embeds every image and reference caption of the split once.

    Returns:
      {'images': [K, ...], 'texts': [L, ...] embeddings, 'tokens':
      [L, max_len + 1], 'caption_image': [L] int, 'image_ids': [K]}.
    """
    config = self.config
    params = parallel.replicate(params, self.mesh)
    images, texts, tokens, caption_image, image_ids = [], [], [], [], []
    batches = pipeline.eval_batches(
        self.source, self.vocab, batch_size=config.eval.batch_size,
        max_len=config.dataset.max_len,
        captions_per_image=config.dataset.captions_per_image,
        process_index=jax.process_index(),
        process_count=jax.process_count())
    bar = progress.bar(len(self.source), 'images',
                       f'retrieval {self.split}: embedding')
    for batch in batches:
      b, r = batch['tokens'].shape[:2]
      flat = batch['tokens'].reshape(b * r, -1)
      placed = parallel.shard_batch(
          {'image': batch['image'], 'tokens': flat}, self.mesh)
      with jax.set_mesh(self.mesh):  # see `parallel.constrain_batch`
        image_emb = self._embed_images(params, placed['image'])
        text_emb = self._embed_texts(params, placed['tokens'])
      image_emb, text_emb = parallel.to_host((image_emb, text_emb))
      host = parallel.to_host(parallel.shard_batch(
          {'mask': batch['mask'], 'caption_mask': batch['caption_mask'],
           'image_id': batch['image_id'], 'tokens': batch['tokens']},
          self.mesh))
      real = host['mask'] > 0
      offset = sum(len(x) for x in images)
      images.append(image_emb[real])
      image_ids.append(host['image_id'][real])
      keep = (host['caption_mask'] * host['mask'][:, None]).reshape(-1) > 0
      texts.append(text_emb[keep])
      tokens.append(host['tokens'].reshape(b * r, -1)[keep])
      owner = np.cumsum(real) - 1 + offset
      caption_image.append(np.repeat(owner, r)[keep])
      bar.update(int(real.sum()))
    bar.close()
    return {'images': np.concatenate(images), 'texts': np.concatenate(texts),
            'tokens': np.concatenate(tokens),
            'caption_image': np.concatenate(caption_image),
            'image_ids': np.concatenate(image_ids)}

  @staticmethod
  def metric_names(config: ml_collections.ConfigDict) -> set[str]:
    """R@K, ranks and rsum both ways (folds and classes come on top)."""
    del config
    square = retrieval_metrics.evaluate(np.eye(2), np.arange(2))
    return set(square) | {'num_images', 'num_captions'}

  def run(self, params) -> dict[str, float]:
    """R@K, ranks, rsum (and folds, per-class P/R@K) of the split."""
    embedded = self.embed_split(params)
    count, captions = len(embedded['images']), len(embedded['texts'])
    with progress.program(f'retrieval {self.split}',
                          f'scoring {count} images x {captions} captions'):
      scores = scoring.pairwise_scores(
          self.model, embedded['images'], embedded['texts'],
          chunk=self._chunk, mesh=self.mesh)
    caption_image = embedded['caption_image']
    metrics = retrieval_metrics.evaluate(scores, caption_image)
    folds = self.config.retrieval.folds
    if folds and len(scores) % folds == 0 and len(scores) > folds:
      fold = retrieval_metrics.evaluate_folds(scores, caption_image, folds)
      metrics.update({f'fold_{k}': v for k, v in fold.items()})
    if self.labels is not None:
      metrics.update(class_metrics(scores, self.labels, caption_image,
                                   self.config.retrieval.class_k))
    metrics['num_images'] = float(len(scores))
    metrics['num_captions'] = float(scores.shape[1])
    self._last = {'params': params, 'scores': scores, 'metrics': metrics,
                  **embedded}
    return metrics

  def word_regions(self, params, count: int) -> list[tuple[Any, ...]]:
    """The alignment model's best region per word for `count` images.

    Returns:
      [(image [H, W, 3] uint8, words list[str], regions [words] int,
      num_cells)], each image with its first reference caption.
    """
    model = self.model

    @jax.jit
    def best(params, image, tokens):
      regions = model.embed_images(params, image)
      return alignment.best_regions(regions, model.embed_texts(params, tokens))

    out = []
    for i in range(min(count, len(self.source))):
      tokens = self.vocab.encode(self.source.captions[i][0],
                                 self.config.dataset.max_len)[None]
      image = self.source.image(i)
      regions = np.asarray(best(params, image[None], tokens))[0]
      mask = np.asarray(alignment.word_mask(tokens))[0] > 0
      names = [self.vocab.words[t] for t in tokens[0][mask]]
      out.append((self._picture(i), names, regions[mask], self._num_cells))
    return out

  def _picture(self, index: int) -> np.ndarray:
    """The photo of example `index`, also when the model reads features."""
    return getattr(self.source, 'photo', self.source.image)(index)

  def write(self, workdir: str) -> list[str]:
    """Writes metrics JSON, the query gallery (and word-region maps)."""
    if not self._last or jax.process_index() != 0:
      return []
    directory = os.path.join(workdir, 'eval')
    prefix = os.path.join(directory, f'retrieval_{self.split}')
    metrics = self._last['metrics']
    atomic_write.write_json(prefix + '.json', metrics, indent=1)
    paths = [prefix + '.json']
    scores, tokens = self._last['scores'], self._last['tokens']
    caption_image = self._last['caption_image']
    queries = list(range(0, min(len(tokens), GALLERY_QUERIES * 5), 5))
    rows = []
    for q in queries:
      top = np.argsort(-scores[:, q], kind='stable')[:GALLERY_TOP]
      rows.append((self.vocab.decode(tokens[q]),
                   [self._picture(int(i)) for i in top],
                   [float(scores[i, q]) for i in top],
                   [bool(i == caption_image[q]) for i in top]))
    paths.append(retrieval_report.write_png(
        prefix + '_queries.png', retrieval_report.query_gallery(
            rows, title=f'{self.split}: text queries, top {GALLERY_TOP}')))
    if self.config.retrieval.model == 'alignment':
      maps = self.word_regions(self._last['params'],
                               self.config.eval.gallery_size)
      paths.append(retrieval_report.write_png(
          prefix + '_word_regions.png',
          retrieval_report.word_region_gallery(maps)))
    return paths
