"""Recurrent cells (LSTM, GRU, m-RNN ReLU) with a fused recurrence.

A cell splits its work the way a fast recurrent layer must:

* `project(x)`: the input-to-gates matmul, applied by the caller to a whole
  sequence at once (one big matmul, outside the time loop);
* `step(carry, x_proj)`: one time step, where only the recurrent matmul
  `h @ W_hh` is left;
* `scan(carry, x_proj)`: the whole sequence. With `fused=True` (the default)
  it runs `lstm_recurrence`/`gru_recurrence`/`relu_recurrence`: a
  `lax.scan` with a hand-written backward pass that keeps the per-step work
  to `dgates @ W_hh^T` and computes the recurrent weight gradient once, as
  one `[T*B, H]^T @ [T*B, G]` matmul, instead of one small matmul per step.
  With `fused=False` it runs `nn.scan` over `step` and lets autodiff do the
  rest; the two are tested to give the same values and gradients.

Mixed precision (`dtype`, from `model.dtype`): the input projection and the
recurrent matmuls, forward and backward, take bfloat16 inputs and accumulate
in float32; the carry, the gates and their activations stay float32 (the
recurrence would otherwise round its state at every step).

Gate layout: LSTM `(i, f, g, o)`, GRU `(r, z, n)` with the reset gate applied
after the recurrent matmul (the cuDNN convention). The ReLU cell is the m-RNN
recurrent layer (Mao et al., Eq. 2): `r(t) = ReLU(U_r r(t-1) + w(t))`, the
previous state mapped into the input space and added, one "gate".
"""

from typing import Any

from flax import linen as nn
import jax
import jax.numpy as jnp

from capjax.models import precision
from capjax.models import recurrences

Carry = Any
# Forget-gate bias at start: remembering is the safer default.
LSTM_FORGET_BIAS = 1.0


def _time_major(x: jax.Array) -> jax.Array:
  return jnp.swapaxes(x, 0, 1)


def _per_gate_orthogonal(num_gates: int):
  """Orthogonal init applied to each `[H, H]` gate block of `[H, G*H]`."""
  base = nn.initializers.orthogonal()

  def init(key, shape, dtype=jnp.float32):
    keys = jax.random.split(key, num_gates)
    size = shape[1] // num_gates
    blocks = [base(k, (shape[0], size), dtype) for k in keys]
    return jnp.concatenate(blocks, axis=1)

  return init


def _lstm_bias_init(key, shape, dtype=jnp.float32):
  del key
  hidden = shape[0] // 4
  return jnp.zeros(shape, dtype).at[hidden : 2 * hidden].set(LSTM_FORGET_BIAS)


# -------------------------------------------------------------- modules ---


class _RecurrentCell(nn.Module):
  """What the cells share: their fields and the whole-sequence `scan`.

  A cell has `num_gates`, `project`, `step` and `_recurrence(carry, x_proj)`,
  its fused recurrence over a time-major [time, batch, gates] sequence.
  """

  features: int
  fused: bool = True  # hand-written backward over the whole sequence
  unroll: int = 1  # time steps per loop iteration in `scan`
  dtype: str = 'float32'  # matmul compute dtype (see `precision`)

  @property
  def compute_dtype(self):
    return precision.compute_dtype(self.dtype)

  def scan(self, carry: Carry, x_proj: jax.Array, time_major: bool = False):
    """Whole sequence: x_proj [batch, time, gates].

    Args:
      carry: the initial carry.
      x_proj: [batch, time, num_gates * features], or [time, batch, ...]
        when `time_major` (no transposes: the fast layout).
      time_major: the layout of x_proj and of the returned hs.

    Returns:
      `(carry, hs)`; hs: [batch, time, features] ([time, batch, features]
      when time_major).
    """
    if not self.fused:
      return _scan_steps(self, carry, x_proj, self.unroll, time_major)
    if time_major:
      return self._recurrence(carry, x_proj)
    carry, hs = self._recurrence(carry, _time_major(x_proj))
    return carry, _time_major(hs)


class LSTMCell(_RecurrentCell):
  """LSTM cell. Carry: `(c, h)`, each [..., features]."""

  num_gates = 4

  def setup(self):
    self.input = precision.dense(
        4 * self.features, self.dtype, bias_init=_lstm_bias_init
    )
    self.recurrent = self.param(
        'recurrent', _per_gate_orthogonal(4), (self.features, 4 * self.features)
    )

  def project(self, x: jax.Array) -> jax.Array:
    """[..., in] -> [..., 4 * features] input contribution to the gates."""
    return self.input(x)

  def zero_carry(self, batch_shape: tuple[int, ...]) -> Carry:
    zeros = jnp.zeros(batch_shape + (self.features,), jnp.float32)
    return zeros, zeros

  def carry_from_hidden(self, c: jax.Array, h: jax.Array) -> Carry:
    return c, h

  def output(self, carry: Carry) -> jax.Array:
    """The hidden state [..., features] of a carry."""
    return carry[1]

  def step(self, carry: Carry, x_proj: jax.Array):
    """One step: x_proj [..., 4 * features] -> (carry, h [..., features])."""
    return recurrences.lstm_step(self.recurrent, carry, x_proj,
                                 self.compute_dtype)

  def _recurrence(self, carry: Carry, x_proj: jax.Array):
    c0, h0 = carry
    return recurrences.lstm_recurrence(
        self.recurrent, x_proj, c0, h0, self.unroll, self.compute_dtype
    )


class GRUCell(_RecurrentCell):
  """GRU cell (reset after the recurrent matmul). Carry: h [..., features]."""

  num_gates = 3

  def setup(self):
    self.input = precision.dense(3 * self.features, self.dtype)
    self.recurrent = self.param(
        'recurrent', _per_gate_orthogonal(3), (self.features, 3 * self.features)
    )
    self.recurrent_bias = self.param(
        'recurrent_bias', nn.initializers.zeros, (self.features,)
    )

  def project(self, x: jax.Array) -> jax.Array:
    """[..., in] -> [..., 3 * features] input contribution to the gates."""
    return self.input(x)

  def zero_carry(self, batch_shape: tuple[int, ...]) -> Carry:
    return jnp.zeros(batch_shape + (self.features,), jnp.float32)

  def carry_from_hidden(self, c: jax.Array, h: jax.Array) -> Carry:
    del c  # a GRU has no cell state
    return h

  def output(self, carry: Carry) -> jax.Array:
    """The hidden state [..., features] of a carry."""
    return carry

  def step(self, carry: Carry, x_proj: jax.Array):
    """One step: x_proj [..., 3 * features] -> (carry, h [..., features])."""
    return recurrences.gru_step(
        self.recurrent, self.recurrent_bias, carry, x_proj, self.compute_dtype
    )

  def _recurrence(self, carry: Carry, x_proj: jax.Array):
    return recurrences.gru_recurrence(
        self.recurrent, self.recurrent_bias, x_proj, carry, self.unroll,
        self.compute_dtype,
    )


class ReLUCell(_RecurrentCell):
  """The m-RNN recurrent layer (Eq. 2). Carry: r [..., features].

  `project` maps an input into the state space with a Dense layer; with
  `project_input=False` it is the identity (the m-RNN feeds its word
  embedding II, already of the state size, straight in).
  """

  num_gates = 1
  project_input: bool = True  # False: the input already has `features` dims

  def setup(self):
    if self.project_input:
      self.input = nn.Dense(self.features)
    self.recurrent = self.param(
        'recurrent', nn.initializers.orthogonal(),
        (self.features, self.features)
    )

  def project(self, x: jax.Array) -> jax.Array:
    """[..., in] -> [..., features] input contribution w(t)."""
    if not self.project_input:
      if x.shape[-1] != self.features:
        raise ValueError(
            f'ReLUCell without input projection needs inputs of size '
            f'{self.features}, got {x.shape[-1]}.'
        )
      return x
    return self.input(x)

  def zero_carry(self, batch_shape: tuple[int, ...]) -> Carry:
    return jnp.zeros(batch_shape + (self.features,), jnp.float32)

  def carry_from_hidden(self, c: jax.Array, h: jax.Array) -> Carry:
    del c  # one state vector
    return jax.nn.relu(h)  # a reachable state (ReLU outputs are >= 0)

  def output(self, carry: Carry) -> jax.Array:
    """The state [..., features] of a carry."""
    return carry

  def step(self, carry: Carry, x_proj: jax.Array):
    """One step: x_proj [..., features] -> (carry, r [..., features])."""
    return recurrences.relu_step(self.recurrent, carry, x_proj)

  def _recurrence(self, carry: Carry, x_proj: jax.Array):
    return recurrences.relu_recurrence(self.recurrent, x_proj, carry,
                                       self.unroll)


def _scan_steps(
    cell: nn.Module,
    carry: Carry,
    x_proj: jax.Array,
    unroll: int,
    time_major: bool = False,
):
  """`nn.scan` of `cell.step` over the time axis of x_proj.

  Args:
    cell: the cell.
    carry: the initial carry.
    x_proj: [batch, time, gates] ([time, batch, gates] when time_major).
    unroll: time steps per loop iteration.
    time_major: the layout of x_proj and of the returned hs.

  Returns:
    `(carry, hs)`, hs in the layout of x_proj.
  """
  axis = 0 if time_major else 1
  scan = nn.scan(
      lambda module, c, x: module.step(c, x),
      variable_broadcast='params',
      split_rngs={'params': False},
      in_axes=axis,
      out_axes=axis,
      unroll=unroll,
  )
  return scan(cell, carry, x_proj)


CELLS = {'lstm': LSTMCell, 'gru': GRUCell, 'relu': ReLUCell}


def create(kind: str, features: int, **kwargs) -> nn.Module:
  """Builds a cell by its config name ('lstm', 'gru' or 'relu')."""
  if kind not in CELLS:
    raise ValueError(
        f'Unknown cell {kind!r}: choose one of {sorted(CELLS)} '
        '(config key model.cell).'
    )
  return CELLS[kind](features=features, **kwargs)
