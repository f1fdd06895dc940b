"""What every captioner shares: the features type and small layer helpers."""

from collections.abc import Callable

import jax

Features = tuple[jax.Array, jax.Array]


def rows(layer: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
  """Applies a Dense layer to x [..., in] as one [rows, in] matmul.

  On a [batch, time, in] input, XLA lowers the weight gradient as a matmul
  contracting two axes and ends up copying the [batch * time, vocab] output
  gradient into a transposed layout; as a plain 2-D matmul the gradient is
  computed once and read in place (the benchmark Show-and-Tell train step
  went from 62-64% to 76-80% of the machine's matmul rate).

  Args:
    layer: a Dense layer.
    x: [..., in].

  Returns:
    [..., out].
  """
  y = layer(x.reshape(-1, x.shape[-1]))
  return y.reshape(x.shape[:-1] + y.shape[-1:])


def expand_to_beam(context: jax.Array, tokens: jax.Array) -> jax.Array:
  """Inserts unit beam axes after the batch axis of a [batch, ...] context.

  Args:
    context: [batch, ...].
    tokens: [batch] or [batch, beam]: tells how many axes to insert.

  Returns:
    [batch, 1, ...] when tokens has a beam axis, else `context` unchanged.
  """
  extra = tokens.ndim - 1
  return context.reshape(context.shape[:1] + (1,) * extra + context.shape[1:])
