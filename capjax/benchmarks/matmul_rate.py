"""This machine's float32 matmul rate, the yardstick of every speed figure.

Every benchmark run measures it in its own process (a large square matmul
through `jax.jit`, on the same default device), at the start and again at the
end, so that a share of it compares like with like even when the machine's
speed drifts during the run (other processes, clocks). The figure used is the
median of all samples.
"""

import dataclasses
import statistics
import time

import jax
import jax.numpy as jnp

DEFAULT_SIZE = 2048


@dataclasses.dataclass
class MatmulRate:
  """Samples of the float32 matmul rate of an [n, n] @ [n, n] product."""

  size: int = DEFAULT_SIZE
  repeats: int = 5
  samples: list[float] = dataclasses.field(default_factory=list)  # GFLOP/s

  def __post_init__(self):
    self._fn = None
    self._args = None

  def sample(self) -> float:
    """Adds one sample; returns it (GFLOP/s)."""
    self._prepare()
    start = time.perf_counter()
    self._fn(*self._args).block_until_ready()
    rate = 2 * self.size**3 / (time.perf_counter() - start) / 1e9
    self.samples.append(rate)
    return rate

  def _prepare(self):
    if self._fn is None:
      keys = jax.random.split(jax.random.key(0))
      shape = (self.size, self.size)
      self._args = tuple(jax.random.normal(k, shape, jnp.float32) for k in keys)
      self._fn = jax.jit(jnp.matmul)
      self._fn(*self._args).block_until_ready()

  def measure(self) -> float:
    """Adds `repeats` samples (after one warm-up call); returns their median."""
    return statistics.median(self.sample() for _ in range(self.repeats))

  @property
  def gflop_per_s(self) -> float:
    """Median of every sample so far (measures once if there are none)."""
    if not self.samples:
      self.measure()
    return statistics.median(self.samples)

  def as_record(self) -> dict:
    """The keys every record of a run carries."""
    return {
        'matmul_gflop_per_s': self.gflop_per_s,
        'matmul_size': self.size,
        'matmul_samples': len(self.samples),
        'matmul_spread': (max(self.samples) - min(self.samples))
        / self.gflop_per_s,
    }


def share(gflop_per_s: float, rate: MatmulRate) -> float:
  """A rate as a share of the machine's matmul rate."""
  return gflop_per_s / rate.gflop_per_s
