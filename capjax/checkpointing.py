"""Orbax checkpoints that carry their config and vocabulary.

A workdir holds:
  checkpoints/<step>/   the last `keep` training states (params, optimizer
                        state, step) with the config and vocabulary as JSON;
  best/<step>/          the best state by a validation metric (optional);
  config.json, vocab.json, written at start.
Orbax writes each step to a temporary directory and renames it when complete,
so a run killed mid-save leaves the previous checkpoint as the latest and
never a half-written one.
"""

import json
import os
from typing import Any

from absl import logging
import jax
import ml_collections
import orbax.checkpoint as ocp

LATEST_DIR = 'checkpoints'
BEST_DIR = 'best'


def _manager(directory: str, **options) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      directory, options=ocp.CheckpointManagerOptions(create=True, **options)
  )


def _items(state, config: ml_collections.ConfigDict, vocab_json: dict):
  return ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      config=ocp.args.JsonSave(json.loads(config.to_json_best_effort())),
      vocab=ocp.args.JsonSave(vocab_json),
  )


class Checkpointer:
  """Saves the latest K states and, optionally, the best one."""

  def __init__(
      self,
      workdir: str,
      *,
      keep: int,
      best_metric: str = '',
      best_mode: str = 'max',
  ):
    self.best_metric = best_metric
    self.latest = _manager(os.path.join(workdir, LATEST_DIR), max_to_keep=keep)
    self.best = None
    if best_metric:
      self.best = _manager(
          os.path.join(workdir, BEST_DIR),
          max_to_keep=1,
          best_fn=lambda metrics: metrics[best_metric],
          best_mode=best_mode,
      )

  def latest_step(self) -> int | None:
    return self.latest.latest_step()

  def save(self, step: int, state, config, vocab_json: dict) -> None:
    """Saves `state` as step `step` (asynchronously; see `wait`)."""
    self.latest.save(step, args=_items(state, config, vocab_json), force=True)

  def save_if_best(
      self, step: int, state, config, vocab_json: dict, metrics: dict
  ) -> None:
    """Offers `state` to the best-checkpoint manager with its metrics."""
    if self.best is None:
      return
    self.best.save(
        step,
        args=_items(state, config, vocab_json),
        metrics={self.best_metric: float(metrics[self.best_metric])},
        force=True,
    )

  def vocab_of(self, step: int) -> dict:
    """The vocabulary JSON saved with a checkpoint."""
    return self.latest.restore(
        step, args=ocp.args.Composite(vocab=ocp.args.JsonRestore())
    )['vocab']

  def restore(self, step: int, abstract_state) -> Any:
    """Restores the state of `step` into the structure of `abstract_state`."""
    restored = self.latest.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state)
        ),
    )
    return restored['state']

  def wait(self) -> None:
    """Blocks until every pending save is on disk."""
    self.latest.wait_until_finished()
    if self.best is not None:
      self.best.wait_until_finished()

  def close(self) -> None:
    self.latest.close()
    if self.best is not None:
      self.best.close()


def find_checkpoint(workdir: str, which: str = 'latest') -> tuple[str, int]:
  """The directory of a workdir's managers and the step to restore.

  Args:
    workdir: a training workdir.
    which: 'latest' or 'best'.

  Returns:
    `(manager_directory, step)`.

  Raises:
    FileNotFoundError: with a one-line message naming what is missing.
  """
  if which not in ('latest', 'best'):
    raise ValueError(f"checkpoint must be 'latest' or 'best'; got {which!r}.")
  if not os.path.isdir(workdir):
    raise FileNotFoundError(
        f'Workdir {workdir} does not exist: train first with '
        f'`python -m capjax.main --config=... --workdir={workdir}`.'
    )
  subdir = LATEST_DIR if which == 'latest' else BEST_DIR
  directory = os.path.join(workdir, subdir)
  step = None
  if os.path.isdir(directory):
    step = ocp.CheckpointManager(directory).latest_step()
  if step is None:
    raise FileNotFoundError(
        f'No {which} checkpoint in {directory}: train first with '
        f'`python -m capjax.main --config=... --workdir={workdir}`.'
    )
  return directory, step


def load_metadata(directory: str, step: int) -> tuple[dict, dict]:
  """The config and vocabulary JSON saved with a checkpoint."""
  manager = ocp.CheckpointManager(directory)
  restored = manager.restore(
      step,
      args=ocp.args.Composite(
          config=ocp.args.JsonRestore(), vocab=ocp.args.JsonRestore()
      ),
  )
  return restored['config'], restored['vocab']


def restore_state(directory: str, step: int, abstract_state) -> Any:
  """Restores a training state saved by `Checkpointer` for inference."""
  manager = ocp.CheckpointManager(directory)
  try:
    restored = manager.restore(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)),
    )
  except (ValueError, KeyError) as e:
    raise ValueError(
        f'Checkpoint {directory}/{step} does not match the model its own '
        f'config describes ({type(e).__name__}: {str(e)[:200]}).'
    ) from e
  logging.info('Restored %s/%d.', directory, step)
  return jax.tree.map(lambda x: x, restored['state'])


def restore_trained(workdir: str, which: str = 'latest'):
  """Everything needed to caption with a workdir's checkpoint.

  The parameters are restored without a target structure (any model's
  checkpoint loads), and the config and vocabulary are the checkpoint's own,
  so the model is rebuilt exactly as it was trained.

  Args:
    workdir: a training workdir.
    which: 'latest' or 'best'.

  Returns:
    `(config, vocab_json, params, step)`.
  """
  directory, step = find_checkpoint(workdir, which)
  config_json, vocab_json = load_metadata(directory, step)
  manager = ocp.CheckpointManager(directory)
  restored = manager.restore(
      step, args=ocp.args.Composite(state=ocp.args.StandardRestore())
  )
  config = ml_collections.ConfigDict(config_json)
  return config, vocab_json, restored['state']['params'], step
