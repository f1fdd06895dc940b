"""Config -> optax optimizer chain and learning-rate schedule.

`freeze` wraps an optimizer so that chosen params (a frozen word embedding)
get no update and no optimizer state. The image encoder (a model's top-level
params key 'encoder') may be frozen the same way (`set_to_zero`) or
fine-tuned at its own learning rate, `optimizer.encoder_lr_multiplier` x the
shared schedule (`optax.multi_transform` over the labels of
`param_labels`). Clipping runs first over every gradient; it takes the
global norm the train step already computed for its log (`GRAD_NORM`, an
extra argument of `update`) instead of computing it a second time. A plain
config (trainable, multiplier 1) builds the single chain, with the
optimizer state it always had.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax

OPTIMIZERS = ('adam', 'adamw', 'sgd', 'rmsprop')
SCHEDULES = ('constant', 'cosine', 'warmup_cosine', 'linear')


def schedule(config: ml_collections.ConfigDict, num_steps: int):
  """Learning rate as a function of the step.

  Args:
    config: the `optimizer` section (learning_rate, schedule, warmup_steps,
      end_factor).
    num_steps: total training steps.

  Returns:
    An optax schedule.
  """
  lr = config.learning_rate
  warmup = min(config.warmup_steps, max(num_steps - 1, 0))
  if config.schedule == 'constant':
    if not warmup:
      return optax.constant_schedule(lr)
    return optax.join_schedules(
        [optax.linear_schedule(0.0, lr, warmup), optax.constant_schedule(lr)],
        [warmup],
    )
  if config.schedule in ('cosine', 'warmup_cosine'):
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0 if warmup else lr,
        peak_value=lr,
        warmup_steps=warmup,
        decay_steps=max(num_steps, warmup + 1),
        end_value=lr * config.end_factor,
    )
  if config.schedule == 'linear':
    return optax.join_schedules(
        [
            optax.linear_schedule(0.0, lr, warmup),
            optax.linear_schedule(
                lr, lr * config.end_factor, max(num_steps - warmup, 1)
            ),
        ],
        [warmup],
    )
  raise ValueError(
      f'Unknown optimizer.schedule {config.schedule!r}: choose one of '
      f'{SCHEDULES}.'
  )


ENCODER_KEY = 'encoder'  # the params subtree an encoder label covers
ENCODER, REST = 'encoder', 'rest'  # the labels of `param_labels`


def param_labels(params) -> dict:
  """A label tree of `params` (a dict): ENCODER under 'encoder', else REST.

  A model without an 'encoder' subtree (the character language model) has
  every leaf labelled REST, so freezing it changes nothing.
  """
  return {k: jax.tree.map(lambda _, k=k: ENCODER if k == ENCODER_KEY else
                          REST, v) for k, v in params.items()}


def create(
    config: ml_collections.ConfigDict, num_steps: int, *,
    encoder_trainable: bool = True,
) -> optax.GradientTransformation:
  """Builds clip-by-global-norm followed by the configured optimizer.

  Args:
    config: the `optimizer` section.
    num_steps: total training steps (for the schedule).
    encoder_trainable: False freezes the params under 'encoder' (no update,
      no state; the model should also stop their gradient).

  Returns:
    The optax transformation.
  """
  multiplier = config.get('encoder_lr_multiplier', 1.0)
  if multiplier < 0:
    raise ValueError('optimizer.encoder_lr_multiplier must be >= 0; got '
                     f'{multiplier}.')
  main = _optimizer(config, schedule(config, num_steps))
  if encoder_trainable and multiplier == 1.0:
    transform = main
  else:
    if not encoder_trainable:
      encoder = optax.set_to_zero()
    else:
      lr = schedule(config, num_steps)
      encoder = _optimizer(config, lambda step: multiplier * lr(step))
    transform = optax.multi_transform({ENCODER: encoder, REST: main},
                                      param_labels)
  if config.grad_clip_norm:
    return optax.chain(clip_by_global_norm(config.grad_clip_norm), transform)
  return transform


GRAD_NORM = 'grad_norm'  # the `update` extra argument of a computed norm


def clip_by_global_norm(
    max_norm: float) -> optax.GradientTransformationExtraArgs:
  """`optax.clip_by_global_norm`, reusing a global norm already computed.

  `update(grads, state, params, grad_norm=norm)` scales by `norm` ([]
  float32, `optax.tree.norm(grads)`) instead of computing it again; without
  `grad_norm` it computes the norm itself. Either way the result is
  optax's, bit for bit (the same formula on the same norm).

  Args:
    max_norm: the largest global norm an update keeps.
  """

  def update_fn(updates, state, params=None, **extra_args):
    del params
    norm = extra_args.get(GRAD_NORM)
    if norm is None:
      norm = optax.tree.norm(updates)
    keep = jnp.squeeze(norm < max_norm)

    def clip(t):
      return jax.lax.select(keep, t, (t / norm.astype(t.dtype)) * max_norm)

    return jax.tree.map(clip, updates), state

  return optax.GradientTransformationExtraArgs(optax.init_empty_state,
                                               update_fn)


def stop_frozen_gradients(params, is_frozen: Callable[[tuple], bool] | None):
  """`params` with `stop_gradient` on the leaves `is_frozen(path)` names.

  The loss then gives those leaves exact zero gradients without computing
  them, so the global norm of every gradient is that of the trained ones
  (the norm `freeze`'s clipping sees).
  """
  if is_frozen is None:
    return params
  return jax.tree_util.tree_map_with_path(
      lambda path, x: jax.lax.stop_gradient(x) if is_frozen(_names(path))
      else x, params)


def _optimizer(config: ml_collections.ConfigDict,
               lr) -> optax.GradientTransformation:
  """The configured optimizer (with Eq. 6's L2) at learning rate `lr`."""
  name = config.name
  if name == 'adam':
    opt = optax.adam(lr, b1=config.b1, b2=config.b2, eps=config.eps)
  elif name == 'adamw':
    opt = optax.adamw(
        lr, b1=config.b1, b2=config.b2, eps=config.eps,
        weight_decay=config.weight_decay,
    )
  elif name == 'sgd':
    opt = optax.sgd(lr, momentum=config.momentum or None)
  elif name == 'rmsprop':
    opt = optax.rmsprop(lr, eps=config.eps, momentum=config.momentum)
  else:
    raise ValueError(
        f'Unknown optimizer.name {name!r}: choose one of {OPTIMIZERS}.'
    )
  if config.get('l2', 0.0):
    # Eq. 6's L2 term through its gradient (coupled, unlike adamw's decay).
    opt = optax.chain(optax.add_decayed_weights(config.l2), opt)
  return opt


FROZEN, TRAINED = 'frozen', 'trained'  # the labels of `freeze`


def _names(path) -> tuple:
  """A tree path -> its keys, e.g. ('decoder', 'embed', 'embedding')."""
  return tuple(getattr(k, 'key', getattr(k, 'name', getattr(k, 'idx', k)))
               for k in path)


def freeze(
    tx: optax.GradientTransformation,
    is_frozen: Callable[[tuple], bool],
) -> optax.GradientTransformation:
  """`tx` for the params where `is_frozen(path)` is False; zero updates else.

  The frozen params get `optax.set_to_zero` (no state), so the optimizer
  keeps no moments for them and `tx`'s clipping sees only trained
  gradients.

  Args:
    tx: the optimizer of the trained params.
    is_frozen: a param's key path (a tuple of names) -> whether it is frozen.
  """

  def labels(params):
    return jax.tree_util.tree_map_with_path(
        lambda path, _: FROZEN if is_frozen(_names(path)) else TRAINED,
        params)

  return optax.multi_transform({TRAINED: tx, FROZEN: optax.set_to_zero()},
                               labels)
