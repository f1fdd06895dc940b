"""Masked cross-entropy and the models' auxiliary losses.

Losses return sums and counts, not means, so that a loss averaged over the
real tokens of a global batch is the same whether the batch sits on one
device, on eight, or on several hosts (the caller divides by the global
count).
"""

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
