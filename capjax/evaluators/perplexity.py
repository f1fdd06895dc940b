"""Perplexity of a split under teacher forcing, for any likelihood task.

Sums the task's `totals` (`nll_sum`, `tokens`) over every batch of the
split, the padding of the last batch masked out, and reports
`exp(nll_sum / tokens)`: the per-token perplexity in nats, as the captioning
literature reports it (`capjax.metrics.perplexity` has the log2 form too).
"""

import functools

import jax
import jax.numpy as jnp
import ml_collections

from capjax import parallel
from capjax import progress
from capjax.data import pipeline
from capjax.metrics import perplexity as perplexity_lib

# Batch fields that only identify examples; they never reach the model.
ID_FIELDS = ('image_id',)


class Perplexity:
  """Teacher-forced likelihood of every reference of a split."""

  def __init__(self, config, task, model, meta, split, mesh):
    self.config, self.task, self.meta = config, task, meta
    self.split, self.mesh = split, mesh
    parallel.check_batch_size(
        config.eval.batch_size, mesh.size, 'config.eval.batch_size')
    self.num_images = len(pipeline.open_split(config.dataset, split))
    self._totals = jax.jit(
        functools.partial(task.totals, model, train=False),
        in_shardings=(parallel.replicated_sharding(mesh),
                      parallel.data_sharding(mesh)),
        out_shardings=parallel.replicated_sharding(mesh),
    )

  @staticmethod
  def metric_names(config: ml_collections.ConfigDict) -> set[str]:
    del config
    return {'perplexity'}

  def run(self, params) -> dict[str, float]:
    params = parallel.replicate(params, self.mesh)
    totals, seen = None, 0
    limit = self.config.eval.max_examples
    # Global batch g holds images [g * size, (g + 1) * size); with a limit,
    # whole batches are scored until it is reached.
    total, size = self.num_images, self.config.eval.batch_size
    if limit:
      total = min(total, -(-limit // size) * size)
    bar = progress.bar(total, 'images', f'perplexity {self.split}')
    for index, batch in enumerate(
        self.task.eval_batches(self.config, self.meta, self.split)):
      if limit and seen >= limit:
        break
      seen += int(batch['mask'].sum()) * jax.process_count()
      batch = {k: v for k, v in batch.items() if k not in ID_FIELDS}
      with jax.set_mesh(self.mesh):  # see `parallel.constrain_batch`
        batch_totals = self._totals(
            params, parallel.shard_batch(batch, self.mesh))
      totals = batch_totals if totals is None else jax.tree.map(
          jnp.add, totals, batch_totals)
      jax.block_until_ready(totals)  # the line counts finished batches
      bar.update(min(size, total - index * size))
    bar.close()
    totals = jax.tree.map(float, jax.device_get(totals))
    return {'perplexity': float(perplexity_lib.corpus_perplexity(
        -totals['nll_sum'], totals['tokens']))}

  def write(self, workdir: str) -> None:
    del workdir  # its one number goes to <split>_metrics.json
