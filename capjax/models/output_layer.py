"""The output layer fused with softmax cross-entropy, for the train loss.

`nll(x, kernel, bias, targets)` is `logsumexp(x @ kernel + bias) -
(x @ kernel + bias)[target]` per row, with a hand-written backward pass that
touches the [rows, vocab] logits as few times as it can. Autodiff of a Dense
layer followed by `losses.token_nll` writes the biased logits (one extra
pass), writes `softmax - onehot` in float32 and then again in the compute
dtype for the gradient matmuls, and sums it over the rows for the bias
gradient (a third pass); here:

- the backward pass's exponential adds the bias itself, so the biased
  logits are written once (XLA CPU still writes them in the forward pass:
  its YNNPACK reductions of the log-sum-exp do not fuse the add) and never
  kept for the backward pass;
- `softmax - onehot` is written once, directly in the compute dtype of the
  gradient matmuls (bfloat16 under `model.dtype='bfloat16'`);
- the bias gradient comes out of the kernel-gradient matmul: x^T gets a row
  of ones, so `[in + 1, rows] @ [rows, vocab]` gives both (one more row of a
  matmul instead of a pass over the logits).

The logits, the softmax and the loss stay float32 whatever the compute dtype;
only the matmul inputs (x, the kernel and `softmax - onehot`) are cast.
"""

import functools

import jax
import jax.numpy as jnp

from capjax.models import precision


def _cast(x, dtype):
  """x in the compute dtype; unchanged for float32 (float64 tests too)."""
  return x if precision.is_float32(dtype) else x.astype(dtype)


def _matmul(a, b, dtype, transpose_b=False):
  """a [m, k] @ b [k, n] (or b [n, k]^T) -> [m, n], float32 accumulation."""
  if precision.is_float32(dtype):
    return a @ (b.T if transpose_b else b)
  return (precision.dot_nt if transpose_b else precision.dot_nn)(a, b)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def nll(
    x: jax.Array,
    kernel: jax.Array,
    bias: jax.Array,
    targets: jax.Array,
    dtype=jnp.float32,
) -> jax.Array:
  """Negative log-likelihood of each row's target under a Dense softmax.

  Args:
    x: [rows, in] float32, the input of the output layer.
    kernel: [in, vocab] float32.
    bias: [vocab] float32.
    targets: [rows] int32 token ids.
    dtype: compute dtype of the three matmuls (float32 accumulation).

  Returns:
    [rows] float32.
  """
  return _nll_fwd(x, kernel, bias, targets, dtype)[0]


def _nll_fwd(x, kernel, bias, targets, dtype):
  x_c, w_c = _cast(x, dtype), _cast(kernel, dtype)
  logits = _matmul(x_c, w_c, dtype)  # [rows, vocab] float32, no bias yet
  biased = logits + bias
  peak = jnp.max(biased, axis=-1)
  lse = peak + jnp.log(jnp.sum(jnp.exp(biased - peak[:, None]), axis=-1))
  target = (jnp.take_along_axis(logits, targets[:, None], -1)[:, 0]
            + bias[targets])
  return lse - target, (x_c, w_c, logits, bias, lse, targets)


def _nll_bwd(dtype, residuals, grad):
  x_c, w_c, logits, bias, lse, targets = residuals
  rows, vocab = logits.shape
  probs = jnp.exp(logits + bias - lse[:, None])
  onehot = jnp.arange(vocab) == targets[:, None]
  dlogits = _cast(
      jnp.where(onehot, probs - 1.0, probs) * grad[:, None], dtype
  )
  dx = _matmul(dlogits, w_c, dtype, transpose_b=True)
  # x^T with a row of ones: the last row of the product is the bias gradient.
  x_t = jnp.concatenate(
      [precision.transpose_rows(x_c), jnp.ones((1, rows), x_c.dtype)], axis=0
  )
  d_kernel_bias = _matmul(x_t, dlogits, dtype)  # [in + 1, vocab]
  return (dx.astype(grad.dtype), d_kernel_bias[:-1].astype(grad.dtype),
          d_kernel_bias[-1].astype(grad.dtype), None)


nll.defvjp(_nll_fwd, _nll_bwd)
