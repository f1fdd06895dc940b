"""Tasks: what a model family learns, behind one contract for the train loop.

The loop in `capjax.train` knows nothing of images, captions or rankings: a
task module, chosen by `config.task`, brings its data, its model and its
loss. A task is a module with the functions of `Task` below; the loop calls
them in this order:

  batches, meta = task.open_data(config)       # meta saved with checkpoints
  model = task.create_model(config, meta)
  params = task.init_params(model, rng, batch)
  totals = task.totals(model, params, batch, train=True, rng=rng)  # sums
  loss = task.loss(totals, global_totals, config)
  metrics = task.summarize(global_totals, config)  # 'loss' is read for NaN

`totals` returns sums over the local batch, never means; `loss` divides the
local sums by the global counts, so 1 device, 8 devices and 2 hosts compute
the same number. Evaluators (`capjax.evaluators`) score a trained model; a
task names its defaults in `DEFAULT_EVALUATORS`.
"""

from collections.abc import Callable, Iterator
import types
from typing import Any, Protocol

import jax
import ml_collections
import numpy as np

from capjax.tasks import captioning
from capjax.tasks import language_model
from capjax.tasks import multilabel
from capjax.tasks import retrieval

Batch = dict[str, np.ndarray]
Meta = dict[str, Any]

# config.task -> the task module.
REGISTRY: dict[str, types.ModuleType] = {
    'captioning': captioning,
    'language_model': language_model,
    'multilabel': multilabel,
    'retrieval': retrieval,
}


class Task(Protocol):
  """The functions (module level) every task module defines."""

  DEFAULT_EVALUATORS: tuple[str, ...]

  def open_data(
      self, config: ml_collections.ConfigDict
  ) -> tuple[Callable[[int], Iterator[Batch]], Meta]:
    """The train batches and the meta a checkpoint needs to be used alone.

    Returns:
      `(batches, meta)`: `batches(start_step)` yields this host's fixed-shape
      numpy batches from global step `start_step` on, batch `s` a pure
      function of `(config.seed, s)`; `meta` is JSON-able (vocabularies,
      sizes) and is compared on resume.
    """

  def create_model(self, config: ml_collections.ConfigDict, meta: Meta):
    """The model of `config.model` for this meta."""

  def init_params(self, model, rng: jax.Array, batch: Batch):
    """Fresh parameters for batches shaped like `batch`."""

  def totals(self, model, params, batch: Batch, *, train: bool,
             rng: jax.Array | None) -> dict[str, jax.Array]:
    """Sums over the local batch, each [] float32 (e.g. nll_sum, tokens)."""

  def loss(self, totals: dict[str, jax.Array],
           global_totals: dict[str, jax.Array],
           config: ml_collections.ConfigDict) -> jax.Array:
    """[] float32: the local sums over the global counts."""

  def summarize(self, totals: dict[str, jax.Array],
                config: ml_collections.ConfigDict) -> dict[str, jax.Array]:
    """What is logged from global totals; has 'loss'."""


DEFAULT = 'captioning'  # the task of a config without `task`


def name_of(config) -> str:
  """`config.task` of a config (or a saved config's dict), DEFAULT if absent."""
  return config.get('task', DEFAULT)


def get(config: ml_collections.ConfigDict) -> types.ModuleType:
  """The task module named by `config.task` ('captioning' when absent)."""
  name = name_of(config)
  if name not in REGISTRY:
    raise ValueError(
        f'Unknown config.task {name!r}: choose one of {sorted(REGISTRY)}.')
  return REGISTRY[name]
