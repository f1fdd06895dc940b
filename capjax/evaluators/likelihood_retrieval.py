"""Likelihood retrieval (m-RNN section 5) of one split, and its perplexity.

Scores log P(s | I) for every image and reference sentence of the split's
first `eval.likelihood.num_images` images (`likelihood.compile_scorer`: the
m-RNN fast path, or the adapter for any other captioner), and the same
sentences against `eval.likelihood.prior_images` training images for Eq. 7's
P(s). Metrics (percent R@K, ranks from 1), via `capjax.metrics.retrieval`:
* `t2i_*`: sentence -> image, images ranked by P(s | I);
* `i2t_*`: image -> sentence, sentences ranked by Eq. 7's P(s | I) / P(s);
* `i2t_unnorm_*`: the same by P(s | I) alone (the paper's point: Eq. 7
  matters);
* `fold_*` with `eval.likelihood.folds` > 1 (COCO 1K protocol);
* `log2_ppl` and `perplexity` of the true pairs (Eq. 5 pooled over words).
"""

import math
import os

import jax
import ml_collections
import numpy as np

from capjax import atomic_write
from capjax import parallel
from capjax import progress
from capjax.evaluators import split_data
from capjax.metrics import perplexity
from capjax.metrics import retrieval
from capjax.models.retrieval import likelihood


class Evaluator:
  """Likelihood retrieval metrics of one split (module docstring)."""

  def __init__(self, config: ml_collections.ConfigDict, task, model, meta,
               split: str, mesh: jax.sharding.Mesh | None = None):
    e = config.eval.likelihood
    self.split = split
    self.folds = e.folds
    self.mesh = mesh or parallel.make_mesh(config.parallel.num_devices)
    vocab = split_data.vocab_of(task, meta)
    source = split_data.open_split(config, split)
    self.images = split_data.images(source, e.num_images)
    tokens, mask = split_data.captions(
        config, source, vocab, count=self.images.shape[0],
        per_image=config.dataset.captions_per_image)
    real = mask.reshape(-1) > 0
    self.caption_image = np.repeat(np.arange(tokens.shape[0]),
                                   tokens.shape[1])[real]
    tokens = tokens.reshape(-1, tokens.shape[-1])[real]
    self.inputs, self.targets = tokens[:, :-1], tokens[:, 1:]
    self.weights = (self.targets != 0).astype(np.float32)
    train = split_data.open_split(config, 'train')
    self.prior_images = split_data.images(train, e.prior_images)
    # The split's and the prior images in one program: the sentence-only
    # work is done once for both, and it compiles once. The m-RNN's fast
    # path runs packed: the softmax layer only at real words.
    num_images = len(self.images) + len(self.prior_images)
    self.fast = likelihood.supports_fast(model)
    pairs = num_images * self.inputs.shape[0]
    if self.fast:
      packed = likelihood.compile_packed_scorer(
          model, self.weights, num_images=num_images,
          chunk=e.chunk * self.inputs.shape[1], mesh=self.mesh)
      self._score = lambda p, i, x, y, w: packed(p, i, x, y)
      (_, image_blocks), (_, position_blocks) = likelihood.packed_blocks(
          num_images, int(np.count_nonzero(self.weights)),
          e.chunk * self.inputs.shape[1], self.mesh.size)
      steps = image_blocks * position_blocks
    else:
      self._score = likelihood.compile_scorer(
          model, num_images=num_images, num_sentences=self.inputs.shape[0],
          chunk=e.chunk, mesh=self.mesh)
      devices = self.mesh.size  # compile_scorer's chunk, a multiple of it
      steps = math.ceil(pairs / min(math.ceil(e.chunk / devices) * devices,
                                    math.ceil(pairs / devices) * devices))
    # What the one compiled program does, for its progress lines.
    self.work = (
        f'log P(s | I) of {len(self.images)} images and '
        f'{len(self.prior_images)} prior images x {self.inputs.shape[0]} '
        f'sentences ({pairs} pairs) in {steps} chunks, one program')
    self.metrics: dict[str, float] = {}

  def scores(self, params) -> tuple[np.ndarray, np.ndarray]:
    """(log P(s | I) [N, S], log P(s | I') [N', S]) for the split."""
    params = parallel.replicate(params, self.mesh)
    with progress.program(f'likelihood_retrieval {self.split}', self.work):
      both = np.asarray(self._score(
          params, np.concatenate([self.images, self.prior_images]),
          self.inputs, self.targets, self.weights))
    return both[:len(self.images)], both[len(self.images):]

  @staticmethod
  def metric_names(config: ml_collections.ConfigDict) -> set[str]:
    del config
    keys = set(retrieval.evaluate(np.eye(2), np.arange(2)))
    unnorm = {k.replace('i2t_', 'i2t_unnorm_') for k in keys
              if k.startswith('i2t_')}
    return keys | unnorm | {'log2_ppl', 'perplexity', 'num_images',
                            'num_sentences'}

  def run(self, params) -> dict[str, float]:
    """The metrics of the module docstring."""
    raw, prior = self.scores(params)
    eq7 = likelihood.normalised(raw, prior)
    def evaluate(s):
      if self.folds > 1:
        return retrieval.evaluate_folds(s, self.caption_image, self.folds)
      return retrieval.evaluate(s, self.caption_image)

    by_raw, by_eq7 = evaluate(raw), evaluate(eq7)
    out = {k: v for k, v in by_raw.items() if k.startswith('t2i_')}
    out.update({k: v for k, v in by_eq7.items() if k.startswith('i2t_')})
    out.update({k.replace('i2t_', 'i2t_unnorm_'): v
                for k, v in by_raw.items() if k.startswith('i2t_')})
    out['rsum'] = sum(out[f'{d}_r{k}'] for d in ('i2t', 't2i')
                      for k in retrieval.RECALL_KS)
    true = raw[self.caption_image, np.arange(raw.shape[1])]
    lengths = self.weights.sum(-1)
    out['log2_ppl'] = float(perplexity.split_log2_perplexity(true, lengths))
    out['perplexity'] = float(perplexity.corpus_perplexity(true, lengths))
    out['num_images'] = float(raw.shape[0])
    out['num_sentences'] = float(raw.shape[1])
    self.metrics = out
    return out

  def write(self, workdir: str) -> None:
    """`<workdir>/eval/likelihood_retrieval_<split>.json` (process 0)."""
    if jax.process_index() != 0:
      return
    atomic_write.write_json(
        os.path.join(workdir, 'eval',
                     f'likelihood_retrieval_{self.split}.json'),
        dict(self.metrics, fast_path=self.fast), indent=1)
