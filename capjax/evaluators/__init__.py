"""Evaluators: a registry by name; each scores a trained model on one split.

`config.eval.evaluators` names them (empty: the task's
`DEFAULT_EVALUATORS`). An evaluator is built once per split, compiling its
functions once, and then run on as many parameter sets as needed:

  evaluator = REGISTRY[name](config, task, model, meta, split, mesh)
  metrics = evaluator.run(params)     # {name: float}
  evaluator.write(workdir)            # its files under <workdir>/eval/

Evaluators receive the task module and the model, never the trainer; the
maths they need lives in `capjax.metrics`.
"""

import os
from typing import Any, Protocol

import jax
import ml_collections

from capjax import atomic_write
from capjax import faults
from capjax.evaluators import bits_per_char
from capjax.evaluators import captions
from capjax.evaluators import consensus_rerank
from capjax.evaluators import likelihood_retrieval
from capjax.evaluators import perplexity
from capjax.evaluators import retrieval
from capjax.evaluators import tags

EVAL_DIR = 'eval'


class Evaluator(Protocol):
  """What every entry of `REGISTRY` builds."""

  def __init__(self, config: ml_collections.ConfigDict, task: Any, model: Any,
               meta: dict, split: str, mesh: jax.sharding.Mesh):
    """Builds and compiles what `run` needs for `split`."""

  @staticmethod
  def metric_names(config: ml_collections.ConfigDict) -> set[str]:
    """The keys `run` returns under `config` (checked before training)."""

  def run(self, params) -> dict[str, float]:
    """Scores `params` on the split."""

  def write(self, workdir: str) -> None:
    """Writes what the last `run` produced (process 0 calls it)."""


REGISTRY: dict[str, type] = {
    'captions': captions.Captions,
    'perplexity': perplexity.Perplexity,
    'retrieval': retrieval.Evaluator,
    'tags': tags.Evaluator,
    'bits_per_char': bits_per_char.Evaluator,
    'likelihood_retrieval': likelihood_retrieval.Evaluator,
    'consensus_rerank': consensus_rerank.Evaluator,
}


def names(config: ml_collections.ConfigDict, task) -> tuple[str, ...]:
  """The evaluators a config runs: its own list, or the task's defaults."""
  chosen = tuple(config.eval.get('evaluators', ()) or task.DEFAULT_EVALUATORS)
  unknown = [n for n in chosen if n not in REGISTRY]
  if unknown:
    raise ValueError(
        f'Unknown evaluator {unknown[0]!r} in config.eval.evaluators: choose '
        f'among {sorted(REGISTRY)}.')
  return chosen


def metric_names(config: ml_collections.ConfigDict, task) -> set[str]:
  """Every metric key the config's evaluators produce."""
  out = set()
  for name in names(config, task):
    out |= REGISTRY[name].metric_names(config)
  return out


class Suite:
  """The config's evaluators of one split, built (and compiled) once."""

  def __init__(self, config, task, model, meta, split, mesh):
    self.split = split
    self.evaluators = [REGISTRY[name](config, task, model, meta, split, mesh)
                       for name in names(config, task)]
    self.metrics: dict[str, float] = {}

  def run(self, params) -> dict[str, float]:
    """Every evaluator's metrics, merged."""
    self.metrics = {}
    for evaluator in self.evaluators:
      self.metrics.update(evaluator.run(params))
    return dict(self.metrics)

  def write(self, workdir: str) -> None:
    """Each evaluator's files and `<split>_metrics.json` (process 0 only)."""
    if jax.process_index():
      return
    out_dir = os.path.join(workdir, EVAL_DIR)
    os.makedirs(out_dir, exist_ok=True)
    for evaluator in self.evaluators:
      evaluator.write(workdir)
    faults.kill_point('eval_write')  # files written, the metrics not yet
    atomic_write.write_json(
        os.path.join(out_dir, f'{self.split}_metrics.json'), self.metrics)
