"""Orbax checkpoints that carry their config and task meta (vocabulary).

A workdir holds:
  checkpoints/<step>/   the last `keep` training states (params, optimizer
                        state, step) with the config and the task's meta
                        (its vocabulary...) as JSON;
  best/<step>/          the best state by a validation metric (optional);
  config.json, meta.json, written at start.
Checkpoints written before tasks existed hold a `vocab` item instead of
`meta`; they are read as the captioning meta `{'vocabulary': vocab}`.
Orbax writes each step to a temporary directory and renames it when complete,
so a run killed mid-save leaves the previous checkpoint as the latest and
never a half-written one. A step damaged later (a data file truncated or
deleted, `_METADATA` deleted, a JSON item cut short) is found when it is
restored: `restore_intact` names it in one line and falls back to the newest
intact step, and training sets the damaged step aside as `<step>.damaged`.
"""

import dataclasses
import json
import os
from typing import Any

from absl import logging
import jax
import ml_collections
import orbax.checkpoint as ocp

from capjax import checkpoint_damage

LATEST_DIR = 'checkpoints'
BEST_DIR = 'best'
META_ITEM = 'meta'
LEGACY_VOCAB_ITEM = 'vocab'  # the meta of checkpoints from before tasks
LEGACY_VOCAB_KEY = 'vocabulary'  # ... is the captioning meta of that vocab


class CheckpointMismatchError(ValueError):
  """A checkpoint's parameters do not fit the model that should load them."""


class DamagedCheckpointError(ValueError):
  """A checkpoint step whose files cannot be read; the message names it."""


class NoIntactCheckpointError(ValueError):
  """Every step of a checkpoint directory is damaged; says what to do."""


# Suffix of a damaged step set aside by training (Orbax ignores the name).
DAMAGED_SUFFIX = '.damaged'
# Orbax's file of a saved tree's structure (restoring without it fails).
PYTREE_METADATA = '_METADATA'
@dataclasses.dataclass
class Restored:
  """A checkpoint step read in full, and the damaged newer steps skipped."""

  step: int
  state: Any  # The saved state (in the given structure, if any).
  config_json: dict
  meta: dict  # The task meta (vocabulary...).
  damaged: list[str]  # One line per damaged newer step, newest first.


def _read_json(manager, step: int, item: str) -> dict:
  try:
    return manager.restore(
        step, args=ocp.args.Composite(**{item: ocp.args.JsonRestore()})
    )[item]
  except Exception as e:  # pylint: disable=broad-except
    item_dir = os.path.join(str(manager.directory), str(step), item)
    raise DamagedCheckpointError(
        f'Checkpoint {manager.directory}/{step} is damaged: its {item} '
        f'({item_dir}) {checkpoint_damage.describe_damage(e)}.') from None


def _read_state(manager, step: int, abstract_state=None):
  """The state of `step`; a damaged step or another model named in one line.

  Raises:
    DamagedCheckpointError: a file of the step cannot be read.
    CheckpointMismatchError: the files are intact but hold another model
      than `abstract_state`.
  """
  checkpoint_damage.quiet_abandoned_reads()
  metadata = os.path.join(str(manager.directory), str(step), 'state',
                          PYTREE_METADATA)
  if '://' not in metadata and not os.path.exists(metadata):
    # A restore into a given structure would not notice.
    raise DamagedCheckpointError(
        f'Checkpoint {manager.directory}/{step} is damaged: its tree '
        f'metadata {metadata} is missing.')
  if abstract_state is not None:
    try:
      return manager.restore(
          step,
          args=ocp.args.Composite(
              state=ocp.args.StandardRestore(abstract_state)),
      )['state']
    except Exception as e:  # pylint: disable=broad-except
      targeted_error = e
  try:
    saved = manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore())
    )['state']
  except Exception as e:  # pylint: disable=broad-except
    raise DamagedCheckpointError(
        f'Checkpoint {manager.directory}/{step} is damaged: '
        f'{checkpoint_damage.describe_damage(e)}.') from None
  if abstract_state is None:
    return saved
  expected = abstract_state
  wanted = (expected.get('params') if isinstance(expected, dict)
            else getattr(expected, 'params', None))
  if wanted is not None and 'params' in saved:
    # The optimizer state repeats every parameter: name the parameters.
    saved, expected = saved['params'], wanted
  difference = describe_mismatch(saved, expected)
  raise CheckpointMismatchError(
      f'The checkpoint {manager.directory}/{step} holds another '
      f'model than this config builds ({difference or targeted_error}). It '
      'was written with another config or capjax version: use a new '
      '--workdir, or the config and version that wrote it.'
  ) from targeted_error


def _set_aside(manager, step: int) -> str:
  """Renames a damaged step out of Orbax's sight; returns the new path."""
  path = os.path.join(str(manager.directory), str(step))
  target, n = path + DAMAGED_SUFFIX, 1
  while os.path.exists(target):
    n += 1
    target = f'{path}{DAMAGED_SUFFIX}-{n}'
  if jax.process_index() == 0:
    os.rename(path, target)
  return target


def restore_intact(
    manager: ocp.CheckpointManager,
    abstract_state=None,
    *,
    set_aside: bool = False,
    what_to_do: str = 'train again into a new --workdir',
) -> Restored | None:
  """Reads the newest intact step of a manager, skipping damaged ones.

  Each damaged step is logged as one warning line naming the step and the
  file that cannot be read, and listed in the result.

  Args:
    manager: the Orbax manager of a checkpoint directory.
    abstract_state: the structure (shapes, shardings) to restore into, or
      None for the saved structure as arrays.
    set_aside: rename damaged steps to `<step>.damaged` (training does, so
      that it can save those steps again); readers leave them.
    what_to_do: advice ending the message when no step is intact.

  Returns:
    The restored step, or None when the directory holds no step at all.

  Raises:
    NoIntactCheckpointError: steps exist but none is intact (one line).
    CheckpointMismatchError: an intact step holds another model.
  """
  steps = sorted(manager.all_steps(), reverse=True)
  if not steps:
    return None
  damaged = []
  for step in steps:
    try:
      config_json = _read_json(manager, step, 'config')
      meta = _read_meta(manager, step)
      state = _read_state(manager, step, abstract_state)
    except DamagedCheckpointError as e:
      line = str(e)
      if set_aside:
        line += f' Set aside as {_set_aside(manager, step)}.'
      damaged.append(line)
      continue
    for line in damaged:
      logging.warning('%s Restored step %d instead.', line, step)
    if set_aside and damaged:
      manager.reload()
    return Restored(step, state, config_json, meta, damaged)
  for line in damaged:
    logging.warning('%s', line)
  if set_aside:
    manager.reload()
  raise NoIntactCheckpointError(
      f'No intact checkpoint in {manager.directory}: all {len(steps)} '
      f'step(s) are damaged ({", ".join(map(str, steps))}; see the warnings '
      f'above): {what_to_do}.')


def _key_name(key) -> str:
  for field in ('key', 'name', 'idx'):  # dict, attribute, sequence keys
    if hasattr(key, field):
      return str(getattr(key, field))
  return str(key)


def _key_paths(tree) -> dict[str, tuple]:
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {
      '/'.join(_key_name(k) for k in path): tuple(getattr(leaf, 'shape', ()))
      for path, leaf in leaves
  }


def describe_mismatch(saved, expected, most: int = 3) -> str:
  """What differs between two trees of arrays, in one short line.

  Args:
    saved: the tree found in a checkpoint.
    expected: the tree the model wants (arrays or shape structs).
    most: how many paths of each kind to name.

  Returns:
    e.g. "missing encoder/global_norm/scale; unexpected decoder/x/kernel;
    other shape decoder/output/kernel (128, 40) instead of (128, 36)", or ''
    when the two trees have the same paths and shapes.
  """
  have, want = _key_paths(saved), _key_paths(expected)
  parts = []
  missing = sorted(set(want) - set(have))
  extra = sorted(set(have) - set(want))
  reshaped = sorted(p for p in set(have) & set(want) if have[p] != want[p])
  for label, paths in (('missing', missing), ('unexpected', extra)):
    if paths:
      more = f' (+{len(paths) - most} more)' if len(paths) > most else ''
      parts.append(f'{label} {", ".join(paths[:most])}{more}')
  if reshaped:
    parts.append('other shape ' + ', '.join(
        f'{p} {have[p]} instead of {want[p]}'
        for p in reshaped[:most]))
  return '; '.join(parts)


def _absolute(path: str) -> str:
  """A local path made absolute (Orbax refuses relative ones); URLs as is."""
  return path if '://' in path else os.path.abspath(path)


def _manager(directory: str, **options) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      _absolute(directory),
      options=ocp.CheckpointManagerOptions(create=True, **options),
  )


def _items(state, config: ml_collections.ConfigDict, meta: dict):
  return ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      config=ocp.args.JsonSave(json.loads(config.to_json_best_effort())),
      meta=ocp.args.JsonSave(meta),
  )


def read_json_file(path: str):
  """A JSON file's content; a damaged one is a one-line error naming it."""
  try:
    with open(path) as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(
        f'{path} is damaged ({e.msg} at line {e.lineno}): delete it to '
        'rewrite it from the config, or use a new --workdir.') from e


def check_writable(workdir: str) -> None:
  """Creates `workdir`, or says in one line why it cannot be written."""
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, f'.capjax-write-test-{os.getpid()}')
    with open(probe, 'w') as f:
      f.write('')
    os.remove(probe)
  except OSError as e:
    raise PermissionError(
        f'Cannot write to {workdir} ({e.strerror}): choose a '
        'writable --workdir.') from e


def _read_meta(manager: ocp.CheckpointManager, step: int) -> dict:
  """The meta of a checkpoint, legacy `vocab` checkpoints included.

  Raises:
    DamagedCheckpointError: the item cannot be read (named).
  """
  step_dir = os.path.join(str(manager.directory), str(step))
  if os.path.isdir(os.path.join(step_dir, LEGACY_VOCAB_ITEM)) and (
      not os.path.isdir(os.path.join(step_dir, META_ITEM))):
    return {LEGACY_VOCAB_KEY: _read_json(manager, step, LEGACY_VOCAB_ITEM)}
  return _read_json(manager, step, META_ITEM)


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

  def save(self, step: int, state, config, meta: dict) -> None:
    """Saves `state` as step `step` (asynchronously; see `wait`)."""
    self.latest.save(step, args=_items(state, config, meta), force=True)

  def has_best(self, step: int) -> bool:
    """Whether `step` is already the saved best state."""
    return self.best is not None and step in self.best.all_steps()

  def save_if_best(
      self, step: int, state, config, meta: dict, metrics: dict
  ) -> None:
    """Offers `state` to the best-checkpoint manager with its metrics.

    A step that is already the best one (a finished run started again) is
    left as it is.
    """
    if self.best is None or self.has_best(step):
      return
    self.best.save(
        step,
        args=_items(state, config, meta),
        metrics={self.best_metric: float(metrics[self.best_metric])},
        force=True,
    )

  def restore(self, step: int, abstract_state) -> Any:
    """Restores the state of `step` into the structure of `abstract_state`.

    Raises:
      CheckpointMismatchError: the checkpoint holds another model's state
        (another config, or an older capjax); the message names the
        parameters that differ.
      DamagedCheckpointError: a file of the step cannot be read (named).
    """
    return _read_state(self.latest, step, abstract_state)

  def restore_latest(self, abstract_state) -> Restored | None:
    """The newest intact training state, for resuming.

    Damaged newer steps are named in one warning line each and set aside as
    `<step>.damaged`, so training saves those steps again.

    Args:
      abstract_state: the structure to restore into.

    Returns:
      The restored step with its config and meta JSON, or None when
      there is no checkpoint yet.

    Raises:
      NoIntactCheckpointError: every step is damaged (one line).
      CheckpointMismatchError: the newest intact step holds another model.
    """
    return restore_intact(
        self.latest, abstract_state, set_aside=True,
        what_to_do=('move the damaged steps away and rerun to start from '
                    'step 0, or train into a new --workdir'))

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
    step = ocp.CheckpointManager(_absolute(directory)).latest_step()
  if step is None:
    raise FileNotFoundError(
        f'No {which} checkpoint in {directory}: train first with '
        f'`python -m capjax.main --config=... --workdir={workdir}`.'
    )
  return directory, step


def restore_trained(workdir: str, which: str = 'latest',
                    flag: str = '--checkpoint'):
  """Everything needed to use a workdir's checkpoint.

  The parameters are restored without a target structure (any model's
  checkpoint loads), and the config and vocabulary are the checkpoint's own,
  so the model is rebuilt exactly as it was trained. A damaged newest step is
  named in a warning and the newest intact one is used (nothing is moved).

  Args:
    workdir: a training workdir.
    which: 'latest' or 'best'.
    flag: the command's flag that chooses `which`, named in the advice
      when every step is damaged and the other checkpoint exists; '' for a
      command without one (the advice is then to train again).

  Returns:
    `(config, meta, params, step)`.

  Raises:
    FileNotFoundError: no checkpoint (one line).
    NoIntactCheckpointError: every step is damaged (one line).
  """
  directory, _ = find_checkpoint(workdir, which)
  other = 'best' if which == 'latest' else 'latest'
  what_to_do = (f'train again with `python -m capjax.main --config=... '
                f'--workdir={workdir}`')
  if flag and os.path.isdir(os.path.join(
      workdir, LATEST_DIR if other == 'latest' else BEST_DIR)):
    what_to_do = f'try {flag}={other}, or {what_to_do}'
  restored = restore_intact(
      ocp.CheckpointManager(_absolute(directory)), what_to_do=what_to_do)
  config = ml_collections.ConfigDict(restored.config_json)
  return config, restored.meta, restored.state['params'], restored.step
