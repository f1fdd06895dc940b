"""What every captioner shares: the features type and small layer helpers."""

from collections.abc import Callable

import jax

from capjax import parallel

Features = tuple[jax.Array, jax.Array]


def rows(layer: Callable[[jax.Array], jax.Array], x: jax.Array,
         batch_axis: int = 0) -> jax.Array:
  """Applies a Dense layer to x [..., in] as one [rows, in] matmul.

  On a [batch, time, in] input, XLA lowers the weight gradient as a matmul
  contracting two axes and ends up copying the [batch * time, vocab] output
  gradient into a transposed layout; as a plain 2-D matmul the gradient is
  computed once and read in place (the benchmark Show-and-Tell train step
  went from 62-64% to 76-80% of the machine's matmul rate).

  A time-major x ([time, batch, in], `batch_axis=1`) inside a data-parallel
  jitted step is regrouped first so that each device's rows are contiguous
  (`parallel.device_rows`): merged as it is, its rows would interleave the
  devices' examples and the partitioner would gather the whole batch onto
  every device.

  Args:
    layer: a Dense layer.
    x: [..., in].
    batch_axis: the batch axis of x.

  Returns:
    [..., out].
  """
  grouped, devices = parallel.device_rows(x, batch_axis)
  y = layer(grouped.reshape(-1, x.shape[-1]))
  return parallel.undo_device_rows(
      y.reshape(grouped.shape[:-1] + y.shape[-1:]), batch_axis, devices)


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
