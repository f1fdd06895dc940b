"""A one-line progress report for long jobs: done/total, rate and ETA."""

import sys
import time


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
               stream=None, every_s: float = 0.5):
    self.total, self.done, self.unit = total, done, unit
    self.stream = stream or sys.stderr
    self.every_s = every_s
    self._start = time.perf_counter()
    self._start_done = done
    self._last = 0.0

  @property
  def rate(self) -> float:
    """Units per second since this run started (0 before any)."""
    elapsed = time.perf_counter() - self._start
    return (self.done - self._start_done) / elapsed if elapsed > 0 else 0.0

  def line(self) -> str:
    rate = self.rate
    eta = ((self.total - self.done) / rate) if rate > 0 else float('nan')
    eta_text = format_duration(eta) if rate > 0 else '?'
    return (f'{self.done}/{self.total} {self.unit}  {rate:.1f} '
            f'{self.unit}/s  ETA {eta_text}')

  def update(self, count: int) -> None:
    """Adds `count` finished units and redraws when it is time."""
    self.done += count
    now = time.perf_counter()
    if now - self._last >= self.every_s or self.done >= self.total:
      self._last = now
      self.stream.write('\r' + self.line())
      self.stream.flush()

  def close(self) -> None:
    self.stream.write('\r' + self.line() + '\n')
    self.stream.flush()
