"""Training: TrainState, the pure train and eval steps, and the train loop.

`train_step` and `eval_step` are pure functions of arrays; `jax.jit` with
shardings (or `jax.pmap`) is applied where they are called, in
`train_and_evaluate`. The loss is a sum over the real tokens of the global
batch divided by their global count, so one device, eight devices and several
hosts compute the same number.
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
from capjax import evaluation
from capjax import losses
from capjax import optimizers
from capjax import parallel
from capjax import summaries
from capjax.data import pipeline
from capjax.data import vocab as vocab_lib
from capjax.models import captioning


class VocabularyMismatchError(ValueError):
  """A workdir's checkpoints were trained with another vocabulary."""


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # [] int32, optimizer steps taken
  params: Any  # {'encoder': ..., 'decoder': ...}
  opt_state: Any  # optax state of `params`


def caption_targets(batch: dict) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Splits tokens into decoder inputs, targets and weights.

  Args:
    batch: 'tokens' int32 [batch, len + 1] or [batch, captions, len + 1]; with
      a caption axis, 'caption_mask' [batch, captions] marks real captions.
      An optional 'mask' [batch] marks real (not padding) examples.

  Returns:
    inputs, targets: int32 [n, len]; weights: float32 [n, len], where n is
    batch (or batch * captions).
  """
  tokens = batch['tokens']
  example_mask = batch.get('mask')
  if tokens.ndim == 3:
    caption_mask = batch['caption_mask']
    if example_mask is not None:
      caption_mask = caption_mask * example_mask[:, None]
    caption_mask = caption_mask.reshape(-1)
    tokens = tokens.reshape((-1, tokens.shape[-1]))
  else:
    caption_mask = (
        example_mask
        if example_mask is not None
        else jnp.ones(tokens.shape[:1], jnp.float32)
    )
  inputs, targets = tokens[:, :-1], tokens[:, 1:]
  weights = (targets != vocab_lib.PAD_ID).astype(jnp.float32)
  return inputs, targets, weights * caption_mask[:, None]


def compute_totals(
    params,
    batch: dict,
    *,
    model: captioning.Captioner,
    train: bool,
    dropout_rng: jax.Array | None = None,
) -> dict[str, jax.Array]:
  """Sums over a batch: nll, tokens, captions and the attention regulariser."""
  inputs, targets, weights = caption_targets(batch)
  tokens = batch['tokens']
  # Logits only at real tokens when config model.output_capacity > 0.
  nll_sum, token_count, intermediates = model.nll_sums(
      params, batch['image'], inputs, targets, weights, train=train,
      dropout_rng=dropout_rng,
      captions_per_image=tokens.shape[1] if tokens.ndim == 3 else 1,
  )
  totals = {
      'nll_sum': nll_sum,
      'tokens': token_count,
      'captions': jnp.sum(weights[:, 0]),
      'attention_sum': jnp.zeros([], jnp.float32),
  }
  if 'attention' in intermediates:
    totals['attention_sum'] = losses.doubly_stochastic(
        intermediates['attention'], weights
    )
  return totals


def train_step(
    state: TrainState,
    batch: dict,
    rng: jax.Array,
    *,
    model: captioning.Captioner,
    tx: optax.GradientTransformation,
    attention_lambda: float,
    axis_name: str | None = None,
) -> tuple[TrainState, dict[str, jax.Array]]:
  """One optimizer step.

  Args:
    state: the train state.
    batch: 'image' [batch, ...], 'tokens' [batch, (captions,) len + 1] (see
      `caption_targets`).
    rng: the run's dropout key; the step folds its number in.
    model: the captioner.
    tx: the optimizer.
    attention_lambda: weight of the doubly stochastic regulariser.
    axis_name: the pmap axis, when run under pmap.

  Returns:
    The new state and metrics ('loss', 'nll', 'attention_penalty',
    'grad_norm', 'learning_step'), each [] float32.
  """
  dropout_rng = jax.random.fold_in(rng, state.step)

  def loss_fn(params):
    totals = compute_totals(
        params, batch, model=model, train=True, dropout_rng=dropout_rng
    )
    global_totals = totals
    if axis_name is not None:
      global_totals = jax.lax.psum(totals, axis_name)
    tokens = jax.lax.stop_gradient(jnp.maximum(global_totals['tokens'], 1.0))
    captions = jax.lax.stop_gradient(
        jnp.maximum(global_totals['captions'], 1.0)
    )
    loss = (
        totals['nll_sum'] / tokens
        + attention_lambda * totals['attention_sum'] / captions
    )
    return loss, global_totals

  grads, totals = jax.grad(loss_fn, has_aux=True)(state.params)
  if axis_name is not None:
    grads = jax.lax.psum(grads, axis_name)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  nll = totals['nll_sum'] / jnp.maximum(totals['tokens'], 1.0)
  penalty = totals['attention_sum'] / jnp.maximum(totals['captions'], 1.0)
  metrics = {
      'loss': nll + attention_lambda * penalty,
      'nll': nll,
      'attention_penalty': penalty,
      'grad_norm': optax.tree.norm(grads),
  }
  new_state = state.replace(
      step=state.step + 1, params=params, opt_state=opt_state
  )
  return new_state, metrics


def eval_step(
    params,
    batch: dict,
    *,
    model: captioning.Captioner,
    axis_name: str | None = None,
) -> dict[str, jax.Array]:
  """Teacher-forced sums over an evaluation batch (for perplexity).

  Args:
    params: model parameters.
    batch: 'image', 'tokens' [batch, captions, len + 1], 'caption_mask',
      'mask' (padding images count for nothing).
    model: the captioner.
    axis_name: the pmap axis, when run under pmap.

  Returns:
    'nll_sum', 'tokens', 'captions', 'attention_sum': [] float32 sums.
  """
  totals = compute_totals(params, batch, model=model, train=False)
  if axis_name is not None:
    totals = jax.lax.psum(totals, axis_name)
  return totals


def create_train_state(
    model: captioning.Captioner,
    tx: optax.GradientTransformation,
    rng: jax.Array,
    example: dict,
) -> TrainState:
  """Fresh parameters and optimizer state for batches shaped like `example`."""
  inputs, _, _ = caption_targets(example)
  params = model.init(rng, example['image'][:1], inputs[:1])
  return TrainState(
      step=jnp.zeros([], jnp.int32), params=params, opt_state=tx.init(params)
  )


@dataclasses.dataclass(frozen=True)
class Setup:
  """What one training run starts from."""

  model: captioning.Captioner
  tx: optax.GradientTransformation
  state: TrainState  # fresh parameters and optimizer state
  dropout_rng: jax.Array  # the run's dropout key (`train_step` folds in steps)
  step_fn: Callable[..., tuple[TrainState, dict[str, jax.Array]]]  # pure


def setup(
    config: ml_collections.ConfigDict, vocab_size: int, example: dict
) -> Setup:
  """The model, optimizer, fresh state and pure step of a config.

  Args:
    config: the experiment config.
    vocab_size: words in the vocabulary.
    example: a batch shaped like the training batches.

  Returns:
    The `Setup`; `step_fn(state, batch, rng)` is `train_step` with the model,
    optimizer and attention weight bound, ready for jit or pmap.
  """
  model = captioning.create(config, vocab_size)
  tx = optimizers.create(config.optimizer, config.train.num_steps)
  init_rng, dropout_rng = jax.random.split(jax.random.key(config.seed))
  state = jax.jit(lambda r, e: create_train_state(model, tx, r, e))(
      init_rng, example
  )
  step_fn = functools.partial(
      train_step, model=model, tx=tx,
      attention_lambda=config.train.attention_lambda,
  )
  return Setup(model, tx, state, dropout_rng, step_fn)


def _build_vocab(config, workdir: str, train_source) -> vocab_lib.Vocab:
  """The vocabulary of the training split, checked against the workdir's.

  A workdir keeps the vocabulary it was trained with; a run whose data gives
  another one (a different dataset or min_count) would misread every
  checkpoint, so it is refused.
  """
  vocab = vocab_lib.Vocab.build(
      pipeline.all_captions(train_source), min_count=config.dataset.min_count
  )
  path = os.path.join(workdir, 'vocab.json')
  if os.path.exists(path):
    saved = vocab_lib.Vocab.load(path)
    if saved != vocab:
      raise VocabularyMismatchError(
          f'{workdir} was trained with another vocabulary ({len(saved)} words, '
          f'fingerprint {saved.fingerprint}) than this config gives '
          f'({len(vocab)} words, {vocab.fingerprint}): use a new --workdir, '
          'or the dataset settings it was trained with.'
      )
  elif jax.process_index() == 0:
    vocab.save(path)
  return vocab


class _Stepper:
  """Compiles the train step for the configured parallel mode."""

  def __init__(self, config, step, mesh):
    self.mode = config.parallel.mode
    if self.mode not in parallel.MODES:
      raise ValueError(
          f'config.parallel.mode must be one of {parallel.MODES}; got '
          f'{self.mode!r}.'
      )
    self.mesh = mesh
    if self.mode == 'pmap':
      self._step = jax.pmap(
          functools.partial(step, axis_name=parallel.PMAP_AXIS),
          axis_name=parallel.PMAP_AXIS,
          in_axes=(0, 0, None),
          donate_argnums=(0,),
      )
    else:
      replicated = parallel.replicated_sharding(mesh)
      self._step = jax.jit(
          step,
          in_shardings=(replicated, parallel.data_sharding(mesh), replicated),
          out_shardings=(replicated, replicated),
          donate_argnums=(0,),
      )

  def place_state(self, state: TrainState) -> TrainState:
    if self.mode == 'pmap':
      return parallel.pmap_replicate(state)
    return parallel.replicate(state, self.mesh)

  def host_state(self, state: TrainState) -> TrainState:
    """A state to save: one copy, not one per device."""
    if self.mode == 'pmap':
      return parallel.pmap_unreplicate(state)
    return state

  def place_batch(self, batch: dict) -> dict:
    if self.mode == 'pmap':
      return parallel.pmap_split(batch)
    return parallel.shard_batch(batch, self.mesh)

  def __call__(self, state, batch, rng):
    state, metrics = self._step(state, batch, rng)
    if self.mode == 'pmap':
      metrics = parallel.pmap_unreplicate(metrics)
    return state, metrics


def _format_eta(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  return f'{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}'


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: str
) -> dict[str, dict[str, float]]:
  """Trains (resuming from the workdir's latest checkpoint) and evaluates.

  Args:
    config: the experiment config (see `capjax.config_base`).
    workdir: where checkpoints, summaries, the vocabulary and the evaluation
      results go.

  Returns:
    `{split: metrics}` of the final evaluation.
  """
  os.makedirs(workdir, exist_ok=True)
  tc = config.train
  train_source = evaluation.open_split(config, 'train')
  vocab = _build_vocab(config, workdir, train_source)
  if jax.process_index() == 0:
    atomic_write.write_json(
        os.path.join(workdir, 'config.json'),
        json.loads(config.to_json_best_effort()),
    )
  mesh = parallel.make_mesh(config.parallel.num_devices)
  parallel.check_batch_size(
      tc.batch_size, mesh.size, 'config.train.batch_size'
  )
  batches = functools.partial(
      pipeline.train_batches,
      train_source,
      vocab,
      batch_size=tc.batch_size,
      max_len=config.dataset.max_len,
      captions_per_image=config.dataset.train_captions_per_image,
      seed=config.seed,
      process_index=jax.process_index(),
      process_count=jax.process_count(),
      prefetch=tc.prefetch,
  )
  example = next(iter(batches(start_step=0)))
  run = setup(config, len(vocab), example)
  model, state, dropout_rng = run.model, run.state, run.dropout_rng

  checkpointer = checkpointing.Checkpointer(
      workdir, keep=tc.keep_checkpoints, best_metric=tc.best_metric
  )
  start_step = checkpointer.latest_step()
  if start_step is not None:
    saved_vocab = vocab_lib.Vocab.from_json(checkpointer.vocab_of(start_step))
    if saved_vocab != vocab:
      raise VocabularyMismatchError(
          f'The checkpoints in {workdir} were trained with another '
          f'vocabulary ({len(saved_vocab)} words) than this config gives '
          f'({len(vocab)} words): use a new --workdir.'
      )
    state = checkpointer.restore(start_step, state)
    logging.info('Resumed from step %d of %s.', start_step, workdir)
  start_step = int(state.step)

  stepper = _Stepper(config, run.step_fn, mesh)
  state = stepper.place_state(state)
  writer = summaries.Writer(workdir, enabled=jax.process_index() == 0)

  train_iter = iter(batches(start_step=start_step))
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
      checkpointer.save(
          step, stepper.host_state(state), config, vocab.to_json()
      )
      last_saved = step

  logging.info(
      'Training %s/%s for %d steps (from step %d) on %d devices.',
      config.model.decoder, config.model.cell, tc.num_steps, start_step,
      mesh.size,
  )
  for step in range(start_step, tc.num_steps):
    batch = stepper.place_batch(next(train_iter))
    state, metrics = stepper(state, batch, dropout_rng)
    pending.append(metrics)
    done = step + 1
    if done % tc.log_every == 0 or done == tc.num_steps:
      host = flush(done)
      now = time.perf_counter()
      rate = (done - timer_step) / max(now - timer_time, 1e-9)
      timer_step, timer_time = done, now
      logging.info(
          'step %d/%d  loss %.4f  nll %.4f  %.2f steps/s  ETA %s',
          done, tc.num_steps, host['loss'], host['nll'], rate,
          _format_eta((tc.num_steps - done) / max(rate, 1e-9)),
      )
      writer.scalars(done, {f'train/{k}': v for k, v in host.items()})
      writer.scalars(done, {'train/steps_per_s': rate})
    if done % tc.checkpoint_every == 0 or done == tc.num_steps:
      if pending:  # a state is saved only after its loss was seen finite
        flush(done)
      save(done)
    if tc.validate_every and done % tc.validate_every == 0:
      _validate(config, model, stepper, state, vocab, workdir, mesh, done,
                checkpointer, writer)
  checkpointer.wait()
  if not tc.validate_every or tc.num_steps % tc.validate_every:
    _validate(config, model, stepper, state, vocab, workdir, mesh,
              tc.num_steps, checkpointer, writer)

  params = stepper.host_state(state).params
  results = {}
  for split in config.eval.splits:
    results[split] = evaluation.evaluate_split(
        config, model, params, vocab, split, workdir, mesh=mesh
    )
    writer.scalars(
        tc.num_steps, {f'{split}/{k}': v for k, v in results[split].items()}
    )
  checkpointer.wait()
  checkpointer.close()
  writer.close()
  return results


def _validate(config, model, stepper, state, vocab, workdir, mesh, step,
              checkpointer, writer):
  """Scores the validation split and offers the state as the best one."""
  if not config.train.best_metric or not config.eval.validation_split:
    return
  params = stepper.host_state(state).params
  metrics = evaluation.evaluate_split(
      config, model, params, vocab, config.eval.validation_split, workdir,
      mesh=mesh, write=False,
  )
  if config.train.best_metric not in metrics:
    raise ValueError(
        f'config.train.best_metric={config.train.best_metric!r} is not among '
        f'the validation metrics {sorted(metrics)}.'
    )
  logging.info(
      'step %d validation: %s', step,
      '  '.join(f'{k} {v:.4f}' for k, v in sorted(metrics.items())),
  )
  writer.scalars(step, {f'validation/{k}': v for k, v in metrics.items()})
  checkpointer.save_if_best(
      step, stepper.host_state(state), config, vocab.to_json(), metrics
  )
