"""Masked cross-entropy and the models' auxiliary losses.

Losses return sums and counts, not means, so that a loss averaged over the
real tokens of a global batch is the same whether the batch sits on one
device, on eight, or on several hosts (the caller divides by the global
count).

The padding-free output layer (`real_positions`, `cross_entropy_rows`)
computes logits only at the real tokens of a batch: a static number of rows
(`output_capacity`), so that nothing recompiles per batch, picked per
data-parallel device so that a sharded step keeps them on their device.
"""

import math

import jax
import jax.numpy as jnp


@jax.custom_vjp
def token_nll(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Negative log-likelihood of each target token.

  The backward pass is `softmax - onehot`, written so that XLA fuses it into
  one elementwise pass over the logits (autodiff of a gather would build a
  zero array and scatter into it).

  Args:
    logits: [..., vocab] float32.
    targets: [...] int32 token ids.

  Returns:
    [...] float32 `logsumexp(logits) - logits[target]`.
  """
  return _token_nll_fwd(logits, targets)[0]


def _token_nll_fwd(logits, targets):
  lse = jax.nn.logsumexp(logits, axis=-1)
  target_logit = jnp.take_along_axis(logits, targets[..., None], -1)[..., 0]
  return lse - target_logit, (logits, lse, targets)


def _token_nll_bwd(residuals, grad):
  logits, lse, targets = residuals
  probs = jnp.exp(logits - lse[..., None])
  onehot = jnp.arange(logits.shape[-1]) == targets[..., None]
  dlogits = jnp.where(onehot, probs - 1.0, probs) * grad[..., None]
  return dlogits, None


token_nll.defvjp(_token_nll_fwd, _token_nll_bwd)


def cross_entropy(
    logits: jax.Array, targets: jax.Array, weights: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """Masked cross-entropy.

  Args:
    logits: [batch, time, vocab] float32.
    targets: [batch, time] int32.
    weights: [batch, time] float32 (0 on padding).

  Returns:
    `(nll_sum, weight_sum)`: [] float32 each.
  """
  # Rows of [tokens, vocab]: XLA then computes d(logits) once for the three
  # matmuls of the output layer's backward pass (on [batch, time, vocab] it
  # recomputed it per consumer).
  vocab = logits.shape[-1]
  nll = token_nll(
      logits.reshape(-1, vocab).astype(jnp.float32), targets.reshape(-1)
  )
  return jnp.sum(nll * weights.reshape(-1)), jnp.sum(weights)


def doubly_stochastic(alpha: jax.Array, weights: jax.Array) -> jax.Array:
  """Show-Attend-and-Tell's attention regulariser, summed over the batch.

  `sum_i (1 - sum_t alpha_ti)^2`, the inner sum over real steps only, so that
  padding steps neither count as attention nor as missing attention.

  Args:
    alpha: [batch, time, cells] attention weights.
    weights: [batch, time] 1 on real steps, 0 on padding.

  Returns:
    [] float32, the sum over examples.
  """
  coverage = jnp.einsum('btl,bt->bl', alpha, weights)
  return jnp.sum((1.0 - coverage) ** 2)


# Rows of the padding-free output layer are rounded up to a multiple of this
# (the vector width of the matmul kernels; any value is correct).
CAPACITY_MULTIPLE = 8


def output_capacity(positions: int, share: float) -> int:
  """Static rows of the padding-free output layer for a batch.

  Args:
    positions: batch * time, every position of the batch.
    share: the share of positions to compute (config model.output_capacity);
      0 (or >= 1) means all of them.

  Returns:
    `ceil(share * positions)` rounded up to a multiple of 8, at most
    `positions`; `positions` when the share is 0.
  """
  if share < 0:
    raise ValueError(
        f'model.output_capacity must be >= 0 (0 = off); got {share}.'
    )
  if share == 0 or share >= 1:
    return positions
  rows = -(-int(math.ceil(share * positions)) // CAPACITY_MULTIPLE)
  return min(positions, rows * CAPACITY_MULTIPLE)


def real_positions(
    weights: jax.Array, capacity: int, groups: int = 1
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The first `capacity / groups` positions of nonzero weight of each group.

  The examples (rows of `weights`) are cut into `groups` equal consecutive
  blocks, and each block picks its own real positions, in order. With the
  batch sharded over `groups` devices, each device then picks among its own
  examples and its rows stay on it (one global pick would gather every
  device's hidden states onto every device, and each would compute all the
  rows).

  Args:
    weights: [batch, time] float32 (0 on padding); batch divisible by groups.
    capacity: static number of rows to return, divisible by `groups`.
    groups: blocks of examples that pick their rows apart.

  Returns:
    `(index [groups, capacity / groups] int32` into each block's flattened
    [batch / groups * time] positions (0 where unused), `row_weights` of the
    same shape, float32 (0 where unused), `fits [] bool`: whether every real
    position got a row; when it is False some were left out and the caller
    must not use these rows).
  """
  if weights.shape[0] % groups or capacity % groups:
    raise ValueError(
        f'{groups} groups must divide the batch ({weights.shape[0]}) and the '
        f'capacity ({capacity}).')
  blocks = weights.reshape(groups, -1)
  real = blocks != 0
  per_group = capacity // groups

  def pick(block_real):
    return jnp.nonzero(block_real, size=per_group, fill_value=0)[0]

  index = jax.vmap(pick)(real).astype(jnp.int32)
  counts = jnp.sum(real, axis=1)
  used = jnp.arange(per_group) < counts[:, None]
  row_weights = jnp.where(used, jnp.take_along_axis(blocks, index, 1), 0.0)
  return index, row_weights, jnp.all(counts <= per_group)


def cross_entropy_rows(
    logits: jax.Array, targets: jax.Array, row_weights: jax.Array
) -> jax.Array:
  """Weighted nll sum of rows: [rows, vocab], [rows], [rows] -> [] float32."""
  nll = token_nll(logits.astype(jnp.float32), targets)
  return jnp.sum(nll * row_weights)


def switch_loss(pred: jax.Array, true_fn, false_fn, *args) -> jax.Array:
  """`lax.cond(pred, true_fn, false_fn, *args)` for a scalar loss.

  Differentiating through `lax.cond` saves the residuals of both branches,
  zero-filled for the branch not taken (for the padded output layer, a
  [batch * time, vocab] array written every step). Here the taken branch
  computes its value and gradient together in the forward pass, so only the
  gradient (shaped like `args` in both branches) is kept. Only first-order
  reverse mode is supported.

  Args:
    pred: [] bool.
    true_fn: `(*args) -> [] float32`.
    false_fn: the same signature.
    *args: the differentiable arguments (pytrees of float arrays).

  Returns:
    [] float32, the loss of the branch `pred` picks.
  """

  @jax.custom_vjp
  def loss(*args):
    return jax.lax.cond(pred, true_fn, false_fn, *args)

  def with_grads(fn):
    argnums = tuple(range(len(args)))
    return lambda *a: jax.value_and_grad(fn, argnums=argnums)(*a)

  def fwd(*args):
    return jax.lax.cond(pred, with_grads(true_fn), with_grads(false_fn), *args)

  def bwd(grads, g):
    return jax.tree.map(lambda x: g * x, grads)

  loss.defvjp(fwd, bwd)
  return loss(*args)
