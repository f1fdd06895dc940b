"""FLOPs of a JAX function's matmuls, counted from its jaxpr.

`matmul_flops(fn, *args)` traces `fn` and adds up `2 * M * N * K` for every
`dot_general` (and the equivalent for every convolution) it would run,
forward and backward alike when `fn` takes gradients: the backward pass is
in the jaxpr as the matmuls autodiff (or a custom VJP) actually emits, so
the count is of the work done, not of a textbook formula. A `scan` counts its
body `length` times; a `while_loop` runs a number of times only known at run
time, so the caller states it (`while_trips`, e.g. max_len for a decode that
never stops early). Elementwise work, reductions, gathers and scatters are
not counted: the figures compare against the machine's matmul rate.
"""

import math
from typing import Any, Callable

import jax
from jax.extend import core as jex_core

MATMUL_PRIMITIVES = ('dot_general', 'conv_general_dilated')


def dot_general_flops(lhs_shape, rhs_shape, dimension_numbers) -> int:
  """2 * batch * M * N * K of one `lax.dot_general`.

  Args:
    lhs_shape: shape of the left operand.
    rhs_shape: shape of the right operand.
    dimension_numbers: `((lhs_contract, rhs_contract), (lhs_batch,
      rhs_batch))` as in `lax.dot_general`.

  Returns:
    Multiply-adds times 2.
  """
  (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dimension_numbers
  contract = math.prod(lhs_shape[d] for d in lhs_contract)
  batch = math.prod(lhs_shape[d] for d in lhs_batch)
  # Free sizes as products of the free dims (not total // shared, which
  # divides by zero when a contracted or batch dim is empty).
  lhs_free = _free_size(lhs_shape, lhs_contract, lhs_batch)
  rhs_free = _free_size(rhs_shape, rhs_contract, rhs_batch)
  return 2 * batch * lhs_free * rhs_free * contract


def _free_size(shape, contract, batch) -> int:
  shared = set(contract) | set(batch)
  return math.prod(n for d, n in enumerate(shape) if d not in shared)


def _conv_flops(eqn) -> int:
  """2 * output elements * (input features per group) * kernel window."""
  out = eqn.outvars[0].aval.shape
  rhs = eqn.invars[1].aval.shape
  spec = eqn.params['dimension_numbers']
  rhs_spec = spec.rhs_spec  # (out feature dim, in feature dim, spatial...)
  window = math.prod(rhs[d] for d in rhs_spec[2:])
  in_per_group = rhs[rhs_spec[1]]
  return 2 * math.prod(out) * in_per_group * window


def _sub_jaxprs(params: dict[str, Any]):
  for value in params.values():
    for item in value if isinstance(value, (list, tuple)) else (value,):
      if isinstance(item, jex_core.ClosedJaxpr):
        yield item.jaxpr
      elif isinstance(item, jex_core.Jaxpr):
        yield item


def jaxpr_flops(jaxpr: jex_core.Jaxpr, while_trips: int | None = None) -> int:
  """Matmul FLOPs of a jaxpr (see the module docstring).

  Args:
    jaxpr: an open jaxpr (`closed_jaxpr.jaxpr`).
    while_trips: iterations of every `while` loop met (its condition is not
      counted); None raises on a loop.

  Returns:
    The FLOPs, an int.
  """
  total = 0
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == 'dot_general':
      total += dot_general_flops(
          eqn.invars[0].aval.shape, eqn.invars[1].aval.shape,
          eqn.params['dimension_numbers'],
      )
    elif name == 'conv_general_dilated':
      total += _conv_flops(eqn)
    elif name == 'scan':
      total += eqn.params['length'] * jaxpr_flops(
          eqn.params['jaxpr'].jaxpr, while_trips
      )
    elif name == 'while':
      if while_trips is None:
        raise ValueError(
            'The function runs a while_loop: pass while_trips, the number of '
            'iterations to count it for.'
        )
      total += while_trips * jaxpr_flops(
          eqn.params['body_jaxpr'].jaxpr, while_trips
      )
    elif name == 'cond':
      total += max(
          jaxpr_flops(branch.jaxpr, while_trips)
          for branch in eqn.params['branches']
      )
    else:
      total += sum(
          jaxpr_flops(sub, while_trips) for sub in _sub_jaxprs(eqn.params)
      )
  return total


def matmul_flops(
    fn: Callable[..., Any], *args, while_trips: int | None = None, **kwargs
) -> int:
  """FLOPs of the matmuls `fn(*args, **kwargs)` runs (traced, not run).

  Args:
    fn: a traceable function.
    *args: its arguments (arrays or `jax.ShapeDtypeStruct`s).
    while_trips: iterations to count each `while_loop` for.
    **kwargs: keyword arguments of `fn`.

  Returns:
    The FLOPs, an int.
  """
  closed = jax.make_jaxpr(lambda *a: fn(*a, **kwargs))(*args)
  return jaxpr_flops(closed.jaxpr, while_trips)
