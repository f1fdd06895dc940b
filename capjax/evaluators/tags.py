"""The hashtag evaluator: the seed's table (BLEU-1, P/R/F1@k) on a split.

For any tag model: a captioner over tag sequences (task captioning, decoded
with no tag twice) or the multi-label classifier (task multilabel); see
`capjax.tagging`. Writes `eval/<split>_tags.json` (scores and every image's
tags).
"""

import os

from capjax import atomic_write
from capjax import progress
from capjax import tagging


class Evaluator:
  """Built once per split; `run(params)` scores, `write(workdir)` saves."""

  def __init__(self, config, task, model, meta, split, mesh=None):
    """Compiles the tagging function once.

    Args:
      config: the run's config (dataset, eval.tag_k, eval.tag_threshold).
      task: the task module (unused: the model kind is config.task).
      model: the tag model.
      meta: the task meta (with the tag vocabulary).
      split: the split scored.
      mesh: unused (one device; the split is small).
    """
    del task, mesh
    self.split = split
    self.tagger = tagging.Tagger(config, tagging.vocab_from_json(meta), model)
    self.source = tagging.open_split(config, split)
    self.batch_size = config.eval.batch_size
    self.limit = config.eval.max_examples
    self._last = None

  @staticmethod
  def metric_names(config) -> set[str]:
    k = config.eval.tag_k
    return {'Bleu_1', f'P@{k}', f'R@{k}', f'F1@{k}', 'num_images'}

  def run(self, params) -> dict[str, float]:
    count = len(self.source)
    bar = progress.bar(min(count, self.limit or count), 'images',
                       f'tags {self.split}')
    scores, results = tagging.score_split(
        self.tagger, params, self.source, batch_size=self.batch_size,
        limit=self.limit, progress=bar)
    bar.close()
    self._last = (scores, results)
    return scores

  def write(self, workdir: str) -> None:
    if self._last is None:
      raise ValueError('Evaluator.write before run.')
    scores, results = self._last
    ids = self.source.image_ids
    atomic_write.write_json(
        os.path.join(workdir, 'eval', f'{self.split}_tags.json'),
        {'scores': scores,
         'tags': [{'image_id': int(ids[i]), 'tags': r.tags}
                  for i, r in enumerate(results)]}, indent=0)
