"""A one-line progress report for long jobs: done/total, rate and ETA."""

import contextlib
import sys
import time

from absl import logging
import jax


def format_duration(seconds: float) -> str:
  """3725 -> '1:02:05'."""
  seconds = max(0, int(round(seconds)))
  return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


class Progress:
  """Prints `done/total unit  rate unit/s  ETA h:mm:ss` on one line.

  The rate counts only the work done by this run (a resumed job starts with
  `done` > 0), and the line is redrawn at most every `every_s` seconds.
  """

  def __init__(self, total: int, done: int = 0, unit: str = 'images',
               stream=None, every_s: float = 0.5, label: str = ''):
    self.total, self.done, self.unit = total, done, unit
    self.stream = stream or sys.stderr
    self.every_s = every_s
    self.label = label  # named in front of each line ('' = nothing)
    self._start = time.perf_counter()
    self._start_done = done
    self._last = 0.0
    self._drawn_at = None  # `done` when the line was last drawn

  @property
  def rate(self) -> float:
    """Units per second since this run started (0 before any)."""
    elapsed = time.perf_counter() - self._start
    return (self.done - self._start_done) / elapsed if elapsed > 0 else 0.0

  def line(self) -> str:
    rate = self.rate
    eta = ((self.total - self.done) / rate) if rate > 0 else float('nan')
    eta_text = format_duration(eta) if rate > 0 else '?'
    prefix = f'{self.label}: ' if self.label else ''
    return (f'{prefix}{self.done}/{self.total} {self.unit}  {rate:.1f} '
            f'{self.unit}/s  ETA {eta_text}')

  def update(self, count: int) -> None:
    """Adds `count` finished units and redraws when it is time."""
    self.done += count
    now = time.perf_counter()
    if now - self._last >= self.every_s or self.done >= self.total:
      self._last = now
      self._draw()

  def _draw(self) -> None:
    self._drawn_at = self.done
    self.stream.write('\r' + self.line())
    self.stream.flush()

  def close(self) -> None:
    """Ends the line: the last count is drawn once, never twice."""
    if self._drawn_at != self.done:
      self._draw()
    self.stream.write('\n')
    self.stream.flush()


class Silent:
  """A `Progress` that counts and prints nothing (`shown()` is False)."""

  def update(self, count: int) -> None:
    del count

  def close(self) -> None:
    pass


def shown() -> bool:
  """Whether evaluation progress is drawn: on process 0 only, and only at
  absl's INFO verbosity, the level of capjax's own progress lines (the
  entry points set it with `logs.quiet_libraries(progress=...)`; the user
  with `--verbosity=-1`)."""
  return jax.process_index() == 0 and logging.level_info()


def bar(total: int, unit: str, label: str) -> Progress | Silent:
  """A `Progress` line on stderr for a loop of known `total` units, or a
  `Silent` one where `shown()` is False; close it when the loop ends."""
  if not shown():
    return Silent()
  return Progress(total, unit=unit, label=label)


@contextlib.contextmanager
def program(label: str, work: str):
  """Lines before and after one compiled program the host cannot follow.

  Prints `label: work ...` before and `label: done in 12.3s` after (on
  stderr, where `shown()`), so a long program is seen to run and is timed
  without a host callback slowing it.

  Args:
    label: what runs, e.g. 'likelihood_retrieval test'.
    work: what it computes, e.g. '40 images x 200 sentences (8000 pairs) in
      2 chunks'.

  Yields:
    Nothing; the body runs the program and waits for its result.
  """
  if not shown():
    yield
    return
  sys.stderr.write(f'{label}: {work} ...\n')
  sys.stderr.flush()
  start = time.perf_counter()
  yield
  sys.stderr.write(f'{label}: done in {time.perf_counter() - start:.1f}s\n')
  sys.stderr.flush()
