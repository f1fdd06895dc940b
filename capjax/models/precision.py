"""Mixed precision: bfloat16 matmul inputs with float32 accumulation.

One config switch, `model.dtype` ('float32' or 'bfloat16'), sets the
*compute* dtype of every matmul of a model. Parameters, optimizer state,
checkpoints, activations between layers, the recurrent state, softmax and the
loss stay float32; only the two inputs of a matmul are cast, and the product
is accumulated and returned in float32 (`preferred_element_type`). On CPUs
with AVX-512 BF16 that runs about twice the float32 rate, while a bfloat16
*output* (no float32 accumulation) runs slower than float32.

`matmul` has its own backward pass: autodiff of a float32-output product
would feed the float32 cotangent into the two gradient matmuls, which would
then run at the float32 rate; here the cotangent is cast to the compute dtype
first, so the backward matmuls run in bfloat16 too (accumulating in float32).

XLA's CPU backend runs a bfloat16 matmul in its fast library (YNNPACK) only
when the left operand contracts its last axis and neither operand is a
transpose; otherwise it silently upcasts both operands to float32 (measured:
slower than float32 itself). So the gradient matmuls here are written as
`dot_general`s of that form (`dot_nt`, `dot_nn`), and the one operand that
must be transposed is transposed physically (`transpose_rows`).
"""

import functools

from flax import linen as nn
import jax
import jax.numpy as jnp
import numpy as np

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def compute_dtype(name: str):
  """'float32' | 'bfloat16' -> the jnp dtype (config key model.dtype)."""
  if name not in DTYPES:
    raise ValueError(
        f'Unknown model.dtype {name!r}: choose one of {sorted(DTYPES)}.'
    )
  return DTYPES[name]


def is_float32(dtype) -> bool:
  return np.dtype(dtype) == np.dtype(jnp.float32)


def dot_nn(a: jax.Array, b: jax.Array) -> jax.Array:
  """a [m, k] @ b [k, n] -> [m, n] float32 (inputs as given)."""
  return jax.lax.dot_general(
      a, b, (((1,), (0,)), ((), ())), preferred_element_type=jnp.float32
  )


def dot_nt(a: jax.Array, b: jax.Array) -> jax.Array:
  """a [m, k] @ b[n, k]^T -> [m, n] float32, with no transpose op."""
  return jax.lax.dot_general(
      a, b, (((1,), (1,)), ((), ())), preferred_element_type=jnp.float32
  )


def transpose_rows(x: jax.Array) -> jax.Array:
  """[n, m] -> [m, n], materialised so that a matmul reads it row-major.

  A plain `x.T` feeding a matmul is folded into the matmul's layout, which
  sends a bfloat16 matmul to XLA CPU's slow float32 fallback; the same
  transpose written through a split of the first axis is not folded.
  """
  n, m = x.shape
  split = next((f for f in (2, 3, 5, 7) if n % f == 0), None)
  if split is None:
    return x.T
  return jnp.transpose(x.reshape(split, n // split, m), (2, 0, 1)).reshape(
      m, n
  )


def _rows_matmul(x, w, dtype):
  """x [..., in] @ w [in, out] as one 2-D product, float32 out."""
  out = dot_nn(x.reshape(-1, x.shape[-1]).astype(dtype), w.astype(dtype))
  return out.reshape(x.shape[:-1] + w.shape[-1:])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _mixed_matmul(x, w, dtype):
  return _rows_matmul(x, w, dtype)


def _mixed_matmul_fwd(x, w, dtype):
  # The residuals are kept in the compute dtype: half the memory and traffic.
  x_c, w_c = x.astype(dtype), w.astype(dtype)
  return _rows_matmul(x_c, w_c, dtype), (x_c, w_c)


def _mixed_matmul_bwd(dtype, residuals, grad):
  x_c, w_c = residuals
  g_rows = grad.reshape(-1, grad.shape[-1]).astype(dtype)
  x_rows = x_c.reshape(-1, x_c.shape[-1])
  dx = dot_nt(g_rows, w_c)
  dw = dot_nn(transpose_rows(x_rows), g_rows)
  return dx.reshape(x_c.shape), dw  # float32, as the primal inputs


_mixed_matmul.defvjp(_mixed_matmul_fwd, _mixed_matmul_bwd)


def matmul(x: jax.Array, w: jax.Array, dtype=jnp.float32) -> jax.Array:
  """x [..., in] @ w [in, out] -> [..., out] float32, computed in `dtype`.

  Float32 is the plain product (autodiff as usual); any other dtype casts
  both inputs, accumulates in float32, and its backward pass runs its two
  matmuls in `dtype` too (accumulating in float32).
  """
  if is_float32(dtype):
    return x @ w
  return _mixed_matmul(x.astype(jnp.float32), w.astype(jnp.float32), dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _mixed_matmul_nt(x, w, dtype):
  rows = x.reshape(-1, x.shape[-1]).astype(dtype)
  out = dot_nt(rows, w.astype(dtype))
  return out.reshape(x.shape[:-1] + w.shape[:1])


def _mixed_matmul_nt_fwd(x, w, dtype):
  x_c, w_c = x.astype(dtype), w.astype(dtype)
  return _mixed_matmul_nt(x_c, w_c, dtype), (x_c, w_c)


def _mixed_matmul_nt_bwd(dtype, residuals, grad):
  x_c, w_c = residuals
  g_rows = grad.reshape(-1, grad.shape[-1]).astype(dtype)
  x_rows = x_c.reshape(-1, x_c.shape[-1])
  dx = dot_nn(g_rows, w_c)
  dw = dot_nn(transpose_rows(g_rows), x_rows)
  return dx.reshape(x_c.shape), dw


_mixed_matmul_nt.defvjp(_mixed_matmul_nt_fwd, _mixed_matmul_nt_bwd)


def matmul_nt(x: jax.Array, w: jax.Array, dtype=jnp.float32) -> jax.Array:
  """x [..., k] @ w [n, k]^T -> [..., n] float32, computed in `dtype`.

  For a weight used transposed (a tied embedding table as the output
  layer): autodiff through `matmul(x, w.T)` lets XLA fold the transposes of
  the weight gradient into a dot form its CPU bfloat16 kernel does not run
  (a runtime error, not a slow path); here every product of the forward and
  backward passes is written in the fast form.
  """
  if is_float32(dtype):
    return x @ w.T
  return _mixed_matmul_nt(x.astype(jnp.float32), w.astype(jnp.float32), dtype)


def dot_general(dtype):
  """A `dot_general` for `nn.Dense(dot_general=...)` computing in `dtype`.

  Float32 gives `jax.lax.dot_general` itself (the layer is unchanged);
  otherwise the Dense contraction (last axis of the input with the first of
  the kernel) goes through `matmul`.
  """
  if is_float32(dtype):
    return jax.lax.dot_general

  def mixed(lhs, rhs, dimension_numbers, precision=None, **kwargs):
    del precision, kwargs
    (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dimension_numbers
    if (tuple(lhs_contract) != (lhs.ndim - 1,) or tuple(rhs_contract) != (0,)
        or lhs_batch or rhs_batch or rhs.ndim != 2):
      raise ValueError(
          f'Mixed-precision dot_general takes a Dense contraction only; got '
          f'{dimension_numbers} for shapes {lhs.shape}, {rhs.shape}.'
      )
    return matmul(lhs, rhs, dtype)

  return mixed


def dense(features: int, dtype: str = 'float32', **kwargs) -> nn.Dense:
  """`nn.Dense` whose matmul computes in the `model.dtype` named `dtype`.

  The parameters (and so checkpoints) stay float32 and the output is
  float32 whatever the compute dtype.
  """
  return nn.Dense(
      features, dot_general=dot_general(compute_dtype(dtype)), **kwargs
  )
