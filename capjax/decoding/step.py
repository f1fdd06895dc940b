"""The step-function contract between captioners and decoders; its checks."""

from typing import Any, Protocol

import jax
from jax import numpy as jnp

PAD_ID = 0
BOS_ID = 1
EOS_ID = 2
NEG_INF = float('-inf')
LENGTH_NORMS = ('gnmt', 'power')

Carry = Any  # a pytree whose leaves have leading dims [batch, beam]


class StepFn(Protocol):
  """One decoding step of a model, for every hypothesis of every image.

  The decoders call it once per emitted token, inside a compiled loop, so it
  must be traceable (no Python control flow on values, no host calls).

  Args:
    tokens: [batch, beam] int32, the token each hypothesis emitted last (BOS
      at the first step).
    carry: a pytree whose leaves are [batch, beam, ...]: each hypothesis's
      recurrent state. Beam search reorders it along the beam axis between
      calls.

  Returns:
    logits: [batch, beam, vocab] float (any float dtype; unnormalised).
    carry: the new state, with the same tree structure, shapes and dtypes.

  Row b of every argument is image b at every step, so context that is
  constant over time (image projections, attention keys `[batch, L, D]`)
  should be computed once, closed over (or bound with
  `jax.tree_util.Partial`), and broadcast against the `[batch, beam, ...]`
  carry instead of being copied per beam.
  """

  def __call__(
    self, tokens: jax.Array, carry: Carry
  ) -> tuple[jax.Array, Carry]: ...


def length_normalizer(
  length: jax.typing.ArrayLike, length_penalty: float, length_norm: str
) -> jax.Array:
  """The divisor of a hypothesis's summed log-probability.

  Args:
    length: [...] the number of emitted tokens, EOS included (max_len for a
      hypothesis cut at max_len).
    length_penalty: alpha; 0 means no normalisation.
    length_norm: 'gnmt' for ((5 + length) / 6) ** alpha (Wu et al., 2016);
      'power' for length ** alpha (alpha = 1 is the plain average log-prob
      per token).

  Returns:
    [...] float32, positive.
  """
  length = jnp.asarray(length, jnp.float32)
  if length_norm == 'gnmt':
    base = (5.0 + length) / 6.0
  elif length_norm == 'power':
    base = length
  else:
    raise ValueError(
      f'length_norm must be one of {LENGTH_NORMS}, got {length_norm!r}.'
    )
  return base**length_penalty


def as_partial(step_fn: StepFn) -> jax.tree_util.Partial:
  """Wraps a step function as a pytree, so jitted decoders can take it.

  A `jax.tree_util.Partial` passes through: its bound arrays (params, image
  context) become traced arguments of the decoder, so new values reuse the
  compiled loop. Any other callable is keyed by identity: a new closure per
  call compiles a new loop.
  """
  if isinstance(step_fn, jax.tree_util.Partial):
    return step_fn
  if not callable(step_fn):
    raise TypeError(f'step_fn must be callable, got {type(step_fn).__name__}.')
  return jax.tree_util.Partial(step_fn)


def batch_size(init_carry: Carry) -> int:
  """The leading dim shared by all leaves of `init_carry`, else ValueError."""
  leaves = jax.tree.leaves(init_carry)
  sizes = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None for leaf in leaves}
  if len(sizes) != 1 or None in sizes:
    raise ValueError(
      'init_carry must be a non-empty pytree whose leaves all have the same '
      f'leading batch dim; got leading dims {sorted(map(str, sizes))}.'
    )
  return sizes.pop()


def add_beam_dim(init_carry: Carry, beam: int) -> Carry:
  """Repeats every leaf [batch, ...] of the carry to [batch, beam, ...]."""
  return jax.tree.map(
    lambda x: jnp.repeat(jnp.asarray(x)[:, None], beam, axis=1), init_carry
  )


def call_step(
  step_fn: StepFn, tokens: jax.Array, carry: Carry
) -> tuple[jax.Array, Carry]:
  """Calls `step_fn`, checking the shapes it returns while tracing.

  Args:
    step_fn: the model's `StepFn`.
    tokens: [batch, beam] int32.
    carry: leaves [batch, beam, ...].

  Returns:
    logits: [batch, beam, vocab] float32, and the new carry.
  """
  logits, new_carry = step_fn(tokens, carry)
  if jnp.ndim(logits) != 3 or jnp.shape(logits)[:2] != tokens.shape:
    raise ValueError(
      'step_fn must return logits [batch, beam, vocab] = '
      f'[{tokens.shape[0]}, {tokens.shape[1]}, V]; got {jnp.shape(logits)}.'
    )

  def spec(tree: Carry) -> Carry:
    return jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), tree)

  same_tree = jax.tree.structure(new_carry) == jax.tree.structure(carry)
  if not same_tree or spec(new_carry) != spec(carry):
    raise ValueError(
      'step_fn must return a carry with the structure, shapes and dtypes of '
      f'its input carry: got {spec(new_carry)} for {spec(carry)}.'
    )
  return jnp.asarray(logits, jnp.float32), new_carry


def check_ids(vocab_size: int, **ids: int) -> None:
  """Raises ValueError if a token id is outside [0, vocab_size)."""
  for name, value in ids.items():
    if not 0 <= value < vocab_size:
      raise ValueError(
        f'{name}={value} is outside the vocabulary of the logits step_fn '
        f'returns (size {vocab_size}).'
      )
