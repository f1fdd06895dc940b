"""The one train loop: any task, any evaluators, resume, NaN stop.

`train_step` is a pure function of arrays over a task's `totals` and `loss`
(`capjax.tasks`); jit with shardings (or pmap) is applied where it is called
(`capjax.stepping`). The loss is the task's local sums over the global
counts, so one device, eight devices and several hosts compute the same
number. `train_and_evaluate` runs a config end to end: it checks the config
before it writes anything, keeps the task's meta (vocabularies) in the
workdir and every checkpoint, resumes from the latest intact checkpoint,
stops on a non-finite loss naming the last good checkpoint, offers each
validation to the best-checkpoint manager, and evaluates the final state.
"""

import dataclasses
import functools
import json
import os
import time
from typing import Any, Callable

from absl import logging
import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from capjax import atomic_write
from capjax import checkpointing
from capjax import config_checks
from capjax import evaluators
from capjax import faults
from capjax import optimizers
from capjax import parallel
from capjax import preemption
from capjax import stepping
from capjax import summaries
from capjax import tasks
from capjax.data import feature_source

META_FILE = 'meta.json'
CONFIG_FILE = 'config.json'


class MetaMismatchError(ValueError):
  """A workdir's checkpoints were trained with another meta (vocabulary)."""


# The name `main` and older callers catch.
VocabularyMismatchError = MetaMismatchError


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # [] int32, optimizer steps taken
  params: Any  # the task model's parameters
  opt_state: Any  # optax state of `params`
  # A task's state carried from one batch to the next (the story model's
  # LSTM state with train.carry_state), leaves [global batch, ...]; None
  # for every other task.
  carry: Any = None


def carries_state(task, config: ml_collections.ConfigDict) -> bool:
  """Whether the task threads a state through consecutive batches."""
  return bool(getattr(task, 'carries_state', None)
              and task.carries_state(config))


def train_step(
    state: TrainState,
    batch: dict,
    rng: jax.Array,
    *,
    task,
    model,
    tx: optax.GradientTransformation,
    config: ml_collections.ConfigDict,
    axis_name: str | None = None,
) -> tuple[TrainState, dict[str, jax.Array]]:
  """One optimizer step of any task.

  Args:
    state: the train state.
    batch: the task's batch (leading axis: examples).
    rng: the run's dropout key; the step folds its number in.
    task: the task module (`capjax.tasks`).
    model: its model.
    tx: the optimizer.
    config: the experiment config (the task reads its loss settings).
    axis_name: the pmap axis, when run under pmap.

  Returns:
    The new state and metrics: the task's `summarize` of the global totals
    plus 'grad_norm', each [] float32.
  """
  step_rng = jax.random.fold_in(rng, state.step)
  carrying = carries_state(task, config)
  # Params the optimizer keeps fixed (a frozen word embedding) get no
  # gradient computed, so the norm below is that of the trained ones.
  is_frozen = task.frozen(config, model) if hasattr(task, 'frozen') else None

  def loss_fn(params):
    params = optimizers.stop_frozen_gradients(params, is_frozen)
    carry = None
    if carrying:
      totals, carry = task.totals_with_state(
          model, params, batch, state.carry, train=True, rng=step_rng)
    else:
      totals = task.totals(model, params, batch, train=True, rng=step_rng)
    global_totals = totals
    if axis_name is not None:
      global_totals = jax.lax.psum(totals, axis_name)
    loss = task.loss(totals, jax.lax.stop_gradient(global_totals), config)
    return loss, (global_totals, carry)

  grads, (totals, carry) = jax.grad(loss_fn, has_aux=True)(state.params)
  if axis_name is not None:
    grads = jax.lax.psum(grads, axis_name)
  # One global norm for the log and the clipping (`optimizers.GRAD_NORM`).
  grad_norm = optax.tree.norm(grads)
  updates, opt_state = optax.with_extra_args_support(tx).update(
      grads, state.opt_state, state.params,
      **{optimizers.GRAD_NORM: grad_norm})
  params = optax.apply_updates(state.params, updates)
  metrics = dict(task.summarize(totals, config))
  metrics['grad_norm'] = grad_norm
  new_state = state.replace(
      step=state.step + 1, params=params, opt_state=opt_state, carry=carry
  )
  return new_state, metrics


@dataclasses.dataclass(frozen=True)
class Setup:
  """What one training run starts from."""

  task: Any  # the task module
  model: Any
  tx: optax.GradientTransformation
  state: TrainState  # fresh parameters and optimizer state
  dropout_rng: jax.Array  # the run's dropout key (`train_step` folds in steps)
  step_fn: Callable[..., tuple[TrainState, dict[str, jax.Array]]]  # pure


def setup(config: ml_collections.ConfigDict, meta: dict,
          example: dict, *, read_initial_values: bool = True) -> Setup:
  """The task's model, the optimizer, a fresh state and the pure step.

  Args:
    config: the experiment config.
    meta: the task's meta (e.g. `{'vocabulary': ...}`).
    example: a batch shaped like the training batches.
    read_initial_values: read the files that set initial params (GloVe
      rows); False when a checkpoint will replace the params anyway.

  Returns:
    The `Setup`; `step_fn(state, batch, rng)` is `train_step` with the task,
    model, optimizer and config bound, ready for jit or pmap.
  """
  task = tasks.get(config)
  model = task.create_model(config, meta)
  tx = optimizers.create(
      config.optimizer, config.train.num_steps,
      encoder_trainable=config.model.encoder.get('trainable', True))
  # Params the task keeps fixed (a frozen word embedding): no update, no state.
  is_frozen = task.frozen(config, model) if hasattr(task, 'frozen') else None
  if is_frozen is not None:
    tx = optimizers.freeze(tx, is_frozen)
  init_rng, dropout_rng = jax.random.split(jax.random.key(config.seed))
  # Values read from files (GloVe rows) that replace random ones, once here.
  initial = (task.initial_values(config, meta, model, example)
             if read_initial_values and hasattr(task, 'initial_values')
             else None)
  # Converted weights (`model.encoder.weights`) replace their random subtree
  # (not read for a run about to be restored).
  pretrained = (model.pretrained_params()
                if read_initial_values and hasattr(model, 'pretrained_params')
                else None)
  if pretrained is not None:
    _check_pretrained(
        jax.eval_shape(functools.partial(task.init_params, model),
                       init_rng, example), pretrained, config)

  def fresh_state(rng, batch, initial, pretrained):
    params = task.init_params(model, rng, batch)
    if initial is not None:
      params = task.apply_initial_values(model, params, initial)
    if pretrained is not None:  # the random init is dead code XLA drops
      params = {**params, **pretrained}
    carry = None
    if carries_state(task, config):  # one stream per example of the batch
      carry = task.initial_state(model, params, config.train.batch_size)
    return TrainState(step=jnp.zeros([], jnp.int32), params=params,
                      opt_state=tx.init(params), carry=carry)

  state = jax.jit(fresh_state)(init_rng, example, initial, pretrained)
  step_fn = functools.partial(train_step, task=task, model=model, tx=tx,
                              config=config)
  return Setup(task, model, tx, state, dropout_rng, step_fn)


def _check_pretrained(want, pretrained: dict, config) -> None:
  """One-line error unless converted weights fit the model's params.

  Args:
    want: the model's params as ShapeDtypeStructs.
    pretrained: {subtree name: arrays} replacing those subtrees.
    config: the experiment config (for the message).
  """
  for key, tree in pretrained.items():
    expected = jax.tree_util.tree_flatten_with_path(want[key])[0]
    got = dict(jax.tree_util.tree_flatten_with_path(tree)[0])
    names = {path: jax.tree_util.keystr(path) for path, _ in expected}
    for path, leaf in expected:
      if path not in got or tuple(got[path].shape) != tuple(leaf.shape):
        found = tuple(got[path].shape) if path in got else 'nothing'
        raise ValueError(
            f'model.encoder.weights={config.model.encoder.weights!r}: '
            f'{key}{names[path]} is {found} there, {tuple(leaf.shape)} for '
            f'this model (dataset.image_size={config.dataset.image_size}; '
            'weights converted for another input size or variant?).')
    if len(got) != len(expected):
      raise ValueError(
          f'model.encoder.weights={config.model.encoder.weights!r} holds '
          f'{len(got)} arrays; the {key} has {len(expected)}.')


def _first_difference(saved: dict, meta: dict) -> str:
  keys = sorted(set(saved) | set(meta))
  return next(k for k in keys if saved.get(k) != meta.get(k))


def _mismatch(where: str, saved: dict, meta: dict) -> MetaMismatchError:
  key = _first_difference(saved, meta)
  settings = ('model.encoder.weights' if key == 'encoder_weights'
              else 'the dataset settings')
  return MetaMismatchError(
      f'{where} was trained with another {key} than this config gives: use '
      f'a new --workdir, or {settings} it was trained with.')


def _check_task(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Refuses a workdir of another task (a retrieval run for a captioner...).

  Its saved config says which task it trained; the meta check would only
  name the first meta field that differs, which says nothing to a user who
  gave the workdir of another family.
  """
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    return
  saved = tasks.name_of(checkpointing.read_json_file(path))
  wanted = tasks.name_of(config)
  if saved != wanted:
    raise MetaMismatchError(
        f'{workdir} holds a run of another task (config.task {saved!r}); '
        f'this config trains {wanted!r}: use a new --workdir, or the config '
        'it was trained with.')


def _check_meta(workdir: str, meta: dict) -> None:
  """Refuses a workdir whose saved meta differs; saves it when new.

  A workdir keeps the meta (vocabulary) it was trained with; a run whose
  data gives another one (another dataset or min_count) would misread every
  checkpoint.
  """
  path = os.path.join(workdir, META_FILE)
  if os.path.exists(path):
    saved = checkpointing.read_json_file(path)
    if saved != meta:
      raise _mismatch(workdir, saved, meta)
  elif jax.process_index() == 0:
    atomic_write.write_json(path, meta)


def _model_name(model) -> str:
  """The class of what a task trains: a captioner's decoder, a retrieval
  model's embedder, a tag classifier's head, or the model itself."""
  for part in ('decoder', 'embedder', 'head'):
    if hasattr(model, part):
      return type(getattr(model, part)).__name__
  return type(model).__name__


def _format_eta(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  return f'{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}'


def _finished_results(config, workdir: str, start_step: int):
  """The saved final metrics when a finished run is run again, else None."""
  if start_step < config.train.num_steps:
    return None
  results = {}
  for split in config.eval.splits:
    path = os.path.join(workdir, evaluators.EVAL_DIR, f'{split}_metrics.json')
    if not os.path.exists(path):
      return None
    results[split] = checkpointing.read_json_file(path)
  return results


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: str
) -> dict[str, dict[str, float]]:
  """Trains (resuming from the workdir's latest checkpoint) and evaluates.

  Running it again on a finished workdir changes nothing and returns the
  saved final metrics.

  Args:
    config: the experiment config (see `capjax.config_base`).
    workdir: where checkpoints, summaries, the meta and the evaluation
      results go.

  Returns:
    `{split: metrics}` of the final evaluation.
  """
  config_checks.check(config)
  task = tasks.get(config)
  tc = config.train
  mesh = parallel.make_mesh(config.parallel.num_devices)
  parallel.check_batch_size(
      tc.batch_size, mesh.size, 'config.train.batch_size')
  checkpointing.check_writable(workdir)
  _check_task(workdir, config)
  batches, meta = task.open_data(config)
  if config.dataset.get('features'):  # a resume on other features is refused
    meta = dict(meta, features=feature_source.meta_of(config.dataset.features))
  _check_meta(workdir, meta)
  if jax.process_index() == 0:
    atomic_write.write_json(
        os.path.join(workdir, CONFIG_FILE),
        json.loads(config.to_json_best_effort()),
    )
  example = next(iter(batches(0)))
  checkpointer = checkpointing.Checkpointer(
      workdir, keep=tc.keep_checkpoints, best_metric=tc.best_metric,
      best_mode=config_checks.best_mode(config))
  # A resumed run's params come from its checkpoint (restored below, or a
  # one-line error): files that only set initial values are read once.
  resuming = checkpointer.latest_step() is not None
  run = setup(config, meta, example, read_initial_values=not resuming)
  model, state, dropout_rng = run.model, run.state, run.dropout_rng
  restored = checkpointer.restore_latest(state)  # damaged steps skipped
  if restored is None and resuming:  # nothing restored after all
    run = setup(config, meta, example)
    state = run.state
  if restored is not None:
    if restored.meta != meta:
      raise _mismatch(f'The checkpoints in {workdir}', restored.meta, meta)
    state = restored.state
    if jax.process_count() > 1:
      # Orbax hands back arrays committed to a local device; placing those on
      # the global mesh is a cross-host transfer the CPU and GPU backends
      # refuse. Every process holds the whole state: place it from host.
      state = jax.device_get(state)
    logging.info('Resumed from step %d of %s.', restored.step, workdir)
  start_step = int(state.step)
  finished = _finished_results(config, workdir, start_step)
  if finished is not None:
    logging.info('%s finished all %d steps and its evaluation already; '
                 'nothing to do.', workdir, tc.num_steps)
    checkpointer.close()
    return finished

  stepper = stepping.Stepper(config, run.step_fn, mesh)
  state = stepper.place_state(state)
  writer = summaries.Writer(workdir, enabled=jax.process_index() == 0)
  suites: dict[str, evaluators.Suite] = {}

  def suite(split: str) -> evaluators.Suite:
    if split not in suites:  # built, and compiled, once per split
      suites[split] = evaluators.Suite(config, task, model, meta, split, mesh)
    return suites[split]

  train_iter = iter(batches(start_step))
  pending: list[dict[str, jax.Array]] = []
  timer_step, timer_time = start_step, time.perf_counter()
  last_saved = start_step

  def flush(step: int) -> dict[str, float]:
    """Averages pending metrics; stops on a non-finite loss."""
    nonlocal pending
    host = jax.tree.map(lambda *x: float(np.mean(x)), *jax.device_get(pending))
    pending = []
    if not np.isfinite(host['loss']):
      checkpointer.wait()
      raise FloatingPointError(
          f'The loss became {host["loss"]} by step {step}; the last good '
          f'checkpoint is step {checkpointer.latest_step()} in {workdir}. '
          'Lower config.optimizer.learning_rate or enable gradient clipping '
          '(config.optimizer.grad_clip_norm), then run again: it resumes '
          'from there.'
      )
    return host

  def save(step: int) -> None:
    nonlocal last_saved
    if step != last_saved:
      checkpointer.save(step, stepper.host_state(state), config, meta)
      faults.kill_point('save', step)  # the save still in flight
      last_saved = step

  def validate(step: int) -> None:
    """Scores the validation split and offers the state as the best one."""
    if not tc.best_metric or not config.eval.validation_split:
      return
    if checkpointer.has_best(step):
      return  # offered before a restart, with the same parameters
    metrics = suite(config.eval.validation_split).run(
        stepper.host_state(state).params)
    logging.info('step %d validation: %s', step, '  '.join(
        f'{k} {v:.4f}' for k, v in sorted(metrics.items())))
    writer.scalars(step, {f'validation/{k}': v for k, v in metrics.items()})
    faults.kill_point('validate', step)  # scored, not yet offered as best
    checkpointer.save_if_best(
        step, stepper.host_state(state), config, meta, metrics)
    faults.kill_point('best_save', step)  # the best save still in flight

  def stop_and_save(step: int, stop: preemption.StopSignals) -> None:
    """Saves `step` (its loss seen finite), waits for it, raises Stopped."""
    stop.saving = True
    if pending:
      flush(step)
    save(step)
    checkpointer.wait()
    checkpointer.close()
    writer.close()
    raise preemption.Stopped(stop.signum, step)

  logging.info('Training %s (%s) for %d steps (from step %d) on %d devices.',
               tasks.name_of(config), _model_name(model),
               tc.num_steps, start_step, mesh.size)
  if (tc.validate_every and start_step % tc.validate_every == 0
      and 0 < start_step < tc.num_steps):
    # A run killed between a save and its validation resumes here: score
    # that state now, as an uninterrupted run did (it is deterministic).
    validate(start_step)
  # SIGTERM (preemption) or Ctrl-C: finish the step, save it, stop; the
  # handlers in place before are back once the loop ends.
  with preemption.StopSignals() as stop:
    for step in range(start_step, tc.num_steps):
      batch = stepper.place_batch(next(train_iter))
      state, metrics = stepper(state, batch, dropout_rng)
      pending.append(metrics)
      done = step + 1
      faults.kill_point('train', done)
      if done % tc.log_every == 0 or done == tc.num_steps:
        host = flush(done)
        now = time.perf_counter()
        rate = (done - timer_step) / max(now - timer_time, 1e-9)
        timer_step, timer_time = done, now
        logging.info(
            'step %d/%d  loss %.4f  %.2f steps/s  ETA %s',
            done, tc.num_steps, host['loss'], rate,
            _format_eta((tc.num_steps - done) / max(rate, 1e-9)),
        )
        writer.scalars(done, {f'train/{k}': v for k, v in host.items()})
        writer.scalars(done, {'train/steps_per_s': rate})
      if done % tc.checkpoint_every == 0 or done == tc.num_steps:
        if pending:  # a state is saved only after its loss was seen finite
          flush(done)
        save(done)
      if tc.validate_every and done % tc.validate_every == 0:
        validate(done)
      if stop.should_stop(done):  # every process, every step
        stop_and_save(done, stop)
  checkpointer.wait()
  if not tc.validate_every or tc.num_steps % tc.validate_every:
    validate(tc.num_steps)

  params = stepper.host_state(state).params
  results = {}
  for split in config.eval.splits:
    results[split] = suite(split).run(params)
    faults.kill_point('evaluate')  # scored, nothing written yet
    suite(split).write(workdir)
    writer.scalars(
        tc.num_steps, {f'{split}/{k}': v for k, v in results[split].items()}
    )
  checkpointer.wait()
  checkpointer.close()
  writer.close()
  return results
