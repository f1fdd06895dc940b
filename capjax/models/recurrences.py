"""The fused recurrences behind `capjax.models.cells`: LSTM, GRU, m-RNN ReLU.

Each is a `lax.scan` over a time-major sequence with a hand-written backward
pass that keeps the per-step work to `dgates @ W_hh^T` and computes the
recurrent weight gradient once, as one `[T*B, H]^T @ [T*B, G]` matmul; the
one-step functions (`lstm_step`, `gru_step`, `relu_step`) are what decoding
and the unfused `nn.scan` path run. With `dtype` bfloat16 the matmuls take
bfloat16 inputs and accumulate in float32; the carry, gates and activations
stay float32.
"""

import functools

import jax
import jax.numpy as jnp

from capjax import parallel
from capjax.models import precision


# ----------------------------------------------------------------- LSTM ---


def _lstm_activations(gates: jax.Array, c: jax.Array):
  i, f, g, o = jnp.split(gates, 4, axis=-1)
  i, f, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jax.nn.sigmoid(o)
  g = jnp.tanh(g)
  c_new = f * c + i * g
  tanh_c = jnp.tanh(c_new)
  return (i, f, g, o, tanh_c), c_new, o * tanh_c


def _batch_split(sequences=(), states=()):
  """Time-major sequences and batch-major states, split over the devices.

  See `parallel.constrain_batch`: without this a jitted, data-parallel step
  runs the whole recurrence, forward and backward, on every device.
  """
  return (tuple(parallel.constrain_batch(x, 1) for x in sequences),
          tuple(parallel.constrain_batch(x, 0) for x in states))


def _cast(x, dtype):
  """x in the compute dtype; unchanged for float32 (float64 tests too)."""
  return x if precision.is_float32(dtype) else x.astype(dtype)


def _mm(x, w_c, dtype):
  """x [b, k] @ w_c [k, n] in the compute dtype (w_c cast), float32 out."""
  if precision.is_float32(dtype):
    return x @ w_c
  return precision.dot_nn(x.astype(dtype), w_c)


def _mm_t(x, w_c, dtype):
  """x [b, n] @ w_c [k, n]^T in the compute dtype, float32 out."""
  if precision.is_float32(dtype):
    return x @ w_c.T
  return precision.dot_nt(x.astype(dtype), w_c)


def lstm_step(w_hh: jax.Array, carry, x_proj: jax.Array, dtype=jnp.float32):
  """One LSTM step.

  Args:
    w_hh: [hidden, 4 * hidden] recurrent kernel.
    carry: `(c, h)`, each [..., hidden] float32.
    x_proj: [..., 4 * hidden] projected input (bias included).
    dtype: compute dtype of the recurrent matmul (float32 accumulation).

  Returns:
    `((c, h), h)`.
  """
  c, h = carry
  gates = x_proj + precision.matmul(h, w_hh, dtype)
  _, c, h = _lstm_activations(gates, c)
  return (c, h), h


def _lstm_forward(w_hh, x_proj, c0, h0, unroll, dtype):
  (x_proj,), (c0, h0) = _batch_split((x_proj,), (c0, h0))
  w_c = _cast(w_hh, dtype)

  def body(carry, x):
    c, h = carry
    acts, c_new, h_new = _lstm_activations(x + _mm(h, w_c, dtype), c)
    return (c_new, h_new), (h_new, c) + acts

  (c_t, h_t), (hs, c_prev, i, f, g, o, tanh_c) = jax.lax.scan(
      body, (c0, h0), x_proj, unroll=unroll
  )
  return (c_t, h_t), hs, (c_prev, i, f, g, o, tanh_c)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def lstm_recurrence(w_hh, x_proj, c0, h0, unroll=1, dtype=jnp.float32):
  """Runs an LSTM over a time-major sequence of projected inputs.

  Args:
    w_hh: [hidden, 4 * hidden] recurrent kernel.
    x_proj: [time, batch, 4 * hidden] projected inputs (bias included).
    c0: [batch, hidden] initial cell state.
    h0: [batch, hidden] initial hidden state.
    unroll: time steps per loop iteration.
    dtype: compute dtype of the recurrent matmuls, forward and backward
      (float32 accumulation; the state and the gates stay float32).

  Returns:
    `((c_T, h_T), hs)`; hs: [time, batch, hidden].
  """
  carry, hs, _ = _lstm_forward(w_hh, x_proj, c0, h0, unroll, dtype)
  return carry, hs


def _lstm_recurrence_fwd(w_hh, x_proj, c0, h0, unroll, dtype):
  carry, hs, acts = _lstm_forward(w_hh, x_proj, c0, h0, unroll, dtype)
  return (carry, hs), (w_hh, h0, hs, acts)


def _lstm_recurrence_bwd(unroll, dtype, residuals, cotangents):
  w_hh, h0, hs, (c_prev, i, f, g, o, tanh_c) = residuals
  (dc_t, dh_t), dhs = cotangents
  (dhs,), (dc_t, dh_t) = _batch_split((dhs,), (dc_t, dh_t))
  w_c = _cast(w_hh, dtype)

  def body(carry, xs):
    dc_next, dh_next = carry
    dh_out, c_p, i, f, g, o, tanh_c = xs
    dh = dh_out + dh_next
    dc = dc_next + dh * o * (1.0 - tanh_c * tanh_c)
    dgates = jnp.concatenate(
        [
            dc * g * i * (1.0 - i),
            dc * c_p * f * (1.0 - f),
            dc * i * (1.0 - g * g),
            dh * tanh_c * o * (1.0 - o),
        ],
        axis=-1,
    )
    return (dc * f, _mm_t(dgates, w_c, dtype)), dgates

  (dc0, dh0), dgates = jax.lax.scan(
      body, (dc_t, dh_t), (dhs, c_prev, i, f, g, o, tanh_c),
      reverse=True, unroll=unroll,
  )
  h_prev = jnp.concatenate([h0[None], hs[:-1]], axis=0)
  dw_hh = _weight_grad(h_prev, dgates, dtype)
  return dw_hh, dgates, dc0, dh0


def _weight_grad(h_prev, dgates, dtype):
  """[time, batch, hidden], [time, batch, gates] -> [hidden, gates] f32."""
  if precision.is_float32(dtype):
    return jnp.einsum('tbh,tbg->hg', h_prev, dgates)
  # The rows in each device's order (the sum over rows does not care), so
  # that a data-parallel step does not gather them (`parallel.device_rows`).
  h_prev, _ = parallel.device_rows(h_prev, 1)
  dgates, _ = parallel.device_rows(dgates, 1)
  h_rows = h_prev.reshape(-1, h_prev.shape[-1]).astype(dtype)
  return precision.dot_nn(
      precision.transpose_rows(h_rows),
      dgates.reshape(-1, dgates.shape[-1]).astype(dtype),
  )


lstm_recurrence.defvjp(_lstm_recurrence_fwd, _lstm_recurrence_bwd)


# ------------------------------------------------------------------ GRU ---


def _gru_activations(x_proj, h_proj, h):
  xr, xz, xn = jnp.split(x_proj, 3, axis=-1)
  hr, hz, hn = jnp.split(h_proj, 3, axis=-1)
  r = jax.nn.sigmoid(xr + hr)
  z = jax.nn.sigmoid(xz + hz)
  n = jnp.tanh(xn + r * hn)
  return (r, z, n, hn), (1.0 - z) * n + z * h


def _gru_bias(b_hn):
  hidden = b_hn.shape[-1]
  return jnp.concatenate([jnp.zeros((2 * hidden,), b_hn.dtype), b_hn])


def gru_step(w_hh: jax.Array, b_hn: jax.Array, h: jax.Array, x_proj: jax.Array,
             dtype=jnp.float32):
  """One GRU step.

  Args:
    w_hh: [hidden, 3 * hidden] recurrent kernel.
    b_hn: [hidden] recurrent bias of the candidate gate.
    h: [..., hidden] float32 hidden state (the carry).
    x_proj: [..., 3 * hidden] projected input (bias included).
    dtype: compute dtype of the recurrent matmul (float32 accumulation).

  Returns:
    `(h, h)`.
  """
  h_proj = precision.matmul(h, w_hh, dtype) + _gru_bias(b_hn)
  _, h = _gru_activations(x_proj, h_proj, h)
  return h, h


def _gru_forward(w_hh, b_hn, x_proj, h0, unroll, dtype):
  (x_proj,), (h0,) = _batch_split((x_proj,), (h0,))
  w_c, bias = _cast(w_hh, dtype), _gru_bias(b_hn)

  def body(h, x):
    acts, h_new = _gru_activations(x, _mm(h, w_c, dtype) + bias, h)
    return h_new, (h_new,) + acts

  h_t, (hs, r, z, n, hn) = jax.lax.scan(body, h0, x_proj, unroll=unroll)
  return h_t, hs, (r, z, n, hn)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def gru_recurrence(w_hh, b_hn, x_proj, h0, unroll=1, dtype=jnp.float32):
  """Runs a GRU over a time-major sequence of projected inputs.

  Args:
    w_hh: [hidden, 3 * hidden] recurrent kernel.
    b_hn: [hidden] recurrent bias of the candidate gate.
    x_proj: [time, batch, 3 * hidden] projected inputs (bias included).
    h0: [batch, hidden] initial state.
    unroll: time steps per loop iteration.
    dtype: compute dtype of the recurrent matmuls, forward and backward
      (float32 accumulation; the state and the gates stay float32).

  Returns:
    `(h_T, hs)`; hs: [time, batch, hidden].
  """
  h_t, hs, _ = _gru_forward(w_hh, b_hn, x_proj, h0, unroll, dtype)
  return h_t, hs


def _gru_recurrence_fwd(w_hh, b_hn, x_proj, h0, unroll, dtype):
  h_t, hs, acts = _gru_forward(w_hh, b_hn, x_proj, h0, unroll, dtype)
  return (h_t, hs), (w_hh, h0, hs, acts)


def _gru_recurrence_bwd(unroll, dtype, residuals, cotangents):
  w_hh, h0, hs, (r, z, n, hn) = residuals
  dh_t, dhs = cotangents
  (dhs,), (dh_t,) = _batch_split((dhs,), (dh_t,))
  h_prev = jnp.concatenate([h0[None], hs[:-1]], axis=0)
  w_c = _cast(w_hh, dtype)

  def body(dh_next, xs):
    dh_out, h_p, r, z, n, hn = xs
    dh = dh_out + dh_next
    dn = dh * (1.0 - z) * (1.0 - n * n)
    dr = dn * hn * r * (1.0 - r)
    dz = dh * (h_p - n) * z * (1.0 - z)
    dx = jnp.concatenate([dr, dz, dn], axis=-1)
    dh_proj = jnp.concatenate([dr, dz, dn * r], axis=-1)
    return dh * z + _mm_t(dh_proj, w_c, dtype), (dx, dh_proj)

  dh0, (dx, dh_proj) = jax.lax.scan(
      body, dh_t, (dhs, h_prev, r, z, n, hn), reverse=True, unroll=unroll
  )
  hidden = h0.shape[-1]
  dw_hh = _weight_grad(h_prev, dh_proj, dtype)
  db_hn = dh_proj[..., 2 * hidden :].sum(axis=(0, 1))
  return dw_hh, db_hn, dx, dh0


gru_recurrence.defvjp(_gru_recurrence_fwd, _gru_recurrence_bwd)


# ----------------------------------------------------------------- ReLU ---


def relu_step(w_hh: jax.Array, h: jax.Array, x_proj: jax.Array):
  """One m-RNN recurrent step: `h = ReLU(h @ w_hh + x_proj)`.

  Args:
    w_hh: [hidden, hidden] recurrent kernel (U_r).
    h: [..., hidden] previous state (the carry).
    x_proj: [..., hidden] the word representation w(t).

  Returns:
    `(h, h)`.
  """
  h = jax.nn.relu(x_proj + h @ w_hh)
  return h, h


def _relu_forward(w_hh, x_proj, h0, unroll):
  (x_proj,), (h0,) = _batch_split((x_proj,), (h0,))
  def body(h, x):
    h_new = jax.nn.relu(x + h @ w_hh)
    return h_new, h_new

  return jax.lax.scan(body, h0, x_proj, unroll=unroll)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def relu_recurrence(w_hh, x_proj, h0, unroll=1):
  """Runs the ReLU recurrence over a time-major sequence.

  Args:
    w_hh: [hidden, hidden] recurrent kernel.
    x_proj: [time, batch, hidden] inputs w(t).
    h0: [batch, hidden] initial state.
    unroll: time steps per loop iteration.

  Returns:
    `(h_T, hs)`; hs: [time, batch, hidden].
  """
  return _relu_forward(w_hh, x_proj, h0, unroll)


def _relu_recurrence_fwd(w_hh, x_proj, h0, unroll):
  h_t, hs = _relu_forward(w_hh, x_proj, h0, unroll)
  return (h_t, hs), (w_hh, h0, hs)


def _relu_recurrence_bwd(unroll, residuals, cotangents):
  w_hh, h0, hs = residuals
  dh_t, dhs = cotangents
  (dhs,), (dh_t,) = _batch_split((dhs,), (dh_t,))
  w_hh_t = w_hh.T

  def body(dh_next, xs):
    dh_out, h = xs
    dpre = jnp.where(h > 0, dh_out + dh_next, 0.0)
    return dpre @ w_hh_t, dpre

  dh0, dpre = jax.lax.scan(
      body, dh_t, (dhs, hs), reverse=True, unroll=unroll
  )
  h_prev = jnp.concatenate([h0[None], hs[:-1]], axis=0)
  dw_hh = jnp.einsum('tbh,tbg->hg', h_prev, dpre)
  return dw_hh, dpre, dh0


relu_recurrence.defvjp(_relu_recurrence_fwd, _relu_recurrence_bwd)
