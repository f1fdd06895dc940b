"""A reusable timer: median, min and max of repeated calls after warm-up.

Results that are JAX arrays (or trees holding them) are waited for with
`jax.block_until_ready`, so asynchronous dispatch is not mistaken for speed.
The first call's time is kept apart: for a jitted function it includes
compilation. Python's garbage collector is paused while the calls run (as
`timeit` does), so a collection of the caller's garbage is not charged to
whichever call it happened to interrupt.
"""

import contextlib
import dataclasses
import gc
import statistics
import time
from typing import Any, Callable

import jax


@dataclasses.dataclass(frozen=True)
class Timing:
  """Seconds of one function, measured `repeats` times after warm-up."""
  first_seconds: float  # the first call (compilation included, if any)
  median_seconds: float
  min_seconds: float
  max_seconds: float
  repeats: int
  warmup: int

  def as_dict(self, prefix: str = '') -> dict[str, float | int]:
    return {f'{prefix}{k}': v for k, v in dataclasses.asdict(self).items()}


@contextlib.contextmanager
def _gc_paused():
  enabled = gc.isenabled()
  gc.disable()
  try:
    yield
  finally:
    if enabled:
      gc.enable()


def _wait(result: Any) -> Any:
  leaves = jax.tree.leaves(result)
  if any(isinstance(leaf, jax.Array) for leaf in leaves):
    jax.block_until_ready(result)
  return result


def time_fn(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1,
            between: Callable[[], Any] | None = None
            ) -> tuple[Timing, Any]:
  """Times `fn()`; returns the timing and the last result.

  Args:
    fn: a function of no arguments.
    repeats: timed calls after the warm-up (at least 1).
    warmup: untimed calls first; the first of all calls is timed apart as
      `first_seconds` (when `warmup` is 0 it also counts as a repeat).
    between: called (untimed) after every timed call, e.g. to sample the
      machine's matmul rate at the same moments as the figure itself.

  Returns:
    (Timing, the result of the last call).
  """
  if repeats < 1:
    raise ValueError(f'repeats must be at least 1, got {repeats}.')
  with _gc_paused():
    return _time_fn(fn, repeats, warmup, between)


def _time_fn(fn, repeats, warmup, between):
  start = time.perf_counter()
  result = _wait(fn())
  first = time.perf_counter() - start
  times = [] if warmup else [first]
  for _ in range(max(warmup - 1, 0)):
    result = _wait(fn())
  while len(times) < repeats:
    start = time.perf_counter()
    result = _wait(fn())
    times.append(time.perf_counter() - start)
    if between is not None:
      between()
  return Timing(first_seconds=first, median_seconds=statistics.median(times),
                min_seconds=min(times), max_seconds=max(times),
                repeats=repeats, warmup=warmup), result


def time_alternating(
    fns: dict[str, Callable[[], Any]], repeats: int = 5, warmup: int = 1,
    between: Callable[[], Any] | None = None,
) -> dict[str, tuple[Timing, Any]]:
  """Times several functions in turns: one call of each per round.

  On a noisy machine the ratio of two figures means something only when
  both were measured over the same stretch of time; interleaving their calls
  gives each the same share of the machine's slow and fast moments.

  Args:
    fns: name -> function of no arguments.
    repeats: rounds of timed calls (at least 1).
    warmup: untimed rounds first (the first call of each is kept apart as
      its `first_seconds`).
    between: called (untimed) after every round.

  Returns:
    name -> (Timing, the result of its last call), in the order of `fns`.
  """
  if repeats < 1:
    raise ValueError(f'repeats must be at least 1, got {repeats}.')
  with _gc_paused():
    return _time_alternating(fns, repeats, warmup, between)


def _time_alternating(fns, repeats, warmup, between):
  first, times, results = {}, {name: [] for name in fns}, {}
  for name, fn in fns.items():
    start = time.perf_counter()
    results[name] = _wait(fn())
    first[name] = time.perf_counter() - start
    if not warmup:
      times[name].append(first[name])
  for _ in range(max(warmup - 1, 0)):
    for name, fn in fns.items():
      results[name] = _wait(fn())
  rounds = repeats - (0 if warmup else 1)
  for _ in range(rounds):
    for name, fn in fns.items():
      start = time.perf_counter()
      results[name] = _wait(fn())
      times[name].append(time.perf_counter() - start)
    if between is not None:
      between()
  return {
      name: (Timing(first_seconds=first[name],
                    median_seconds=statistics.median(times[name]),
                    min_seconds=min(times[name]), max_seconds=max(times[name]),
                    repeats=repeats, warmup=warmup), results[name])
      for name in fns
  }
