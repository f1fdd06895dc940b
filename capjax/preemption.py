"""Stop signals during training: finish the step, save it, then stop.

A TPU VM or a GPU cluster sends SIGTERM before it preempts a job (so does
`kill`); a user at a terminal sends SIGINT (Ctrl-C). While `StopSignals` is
active, the first such signal only asks the train loop to stop: it finishes
the step in flight, saves a checkpoint of it, waits for the save and raises
`Stopped`. A second signal before that save stops at once (`Stopped` raised
from the handler, keeping what was saved before); one during the save is
logged and the save ends first. A SIGKILL during it leaves the previous
checkpoint the latest: Orbax writes a step to a temporary directory and
renames it when complete.

With several processes every one must stop at the same step. JAX's
preemption service (started by `jax.distributed.initialize`) catches SIGTERM
on each process, and `reached_preemption_sync_point` agrees on the step;
SIGINT is passed to it as a SIGTERM to this process. A single process uses
its own flag.
"""

import signal
import threading

from absl import logging
import jax
from jax.experimental import multihost_utils

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_code(signum: int) -> int:
  """The shell's code for a command stopped by `signum` (130, 143)."""
  return 128 + signum


class Stopped(Exception):  # pylint: disable=g-bad-exception-name
  """Training stopped on a signal; `step` is the step saved, or None."""

  def __init__(self, signum: int, step: int | None):
    self.signum = signum
    self.step = step
    name = signal.Signals(signum).name
    super().__init__(f'stopped by {name} ' + (
        f'after saving step {step}' if step is not None else 'at once'))


class StopSignals:
  """Catches SIGINT and SIGTERM while training; restores the old handlers.

  Use as a context manager around the train loop and call `should_stop(step)`
  after every step (every process, every step: the multi-process sync point
  needs it).
  """

  def __init__(self, multiprocess: bool | None = None):
    if multiprocess is None:
      multiprocess = jax.process_count() > 1
    self.multiprocess = multiprocess
    # Without JAX's preemption service the processes cannot agree on a step:
    # the signals then act as they did before (no save).
    self.enabled = not multiprocess or jax.config.jax_enable_preemption_service
    self.signum: int | None = None  # the first signal received
    self.saving = False  # set while the final save is written
    self._previous: dict[int, object] = {}

  def __enter__(self) -> 'StopSignals':
    if not self.enabled:
      logging.warning('jax_enable_preemption_service is off: a stop signal '
                      'ends this multi-process run without a save.')
      return self
    if threading.current_thread() is not threading.main_thread():
      return self  # signal handlers can only be set from the main thread
    # With several processes JAX's preemption service owns SIGTERM.
    caught = (signal.SIGINT,) if self.multiprocess else SIGNALS
    for signum in caught:
      self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc_info) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous = {}

  def _handle(self, signum: int, frame) -> None:
    del frame
    if self.saving:  # stopping could only lose the step being saved
      logging.warning('%s again: the final save ends first (SIGKILL would '
                      'keep the previous checkpoint).',
                      signal.Signals(signum).name)
      return
    if self.signum is not None:  # a second signal before the save: stop now
      logging.warning('%s again: stopping at once.',
                      signal.Signals(signum).name)
      raise Stopped(signum, None)
    self.signum = signum
    logging.warning('%s: stopping after the step in flight is saved '
                    '(send it again to stop at once).',
                    signal.Signals(signum).name)
    if self.multiprocess:  # tell every process, through JAX's service
      signal.raise_signal(signal.SIGTERM)

  def should_stop(self, step: int) -> bool:
    """Whether to save `step` and stop (the same answer on every process).

    Args:
      step: the number of steps taken so far.
    """
    if not self.multiprocess:
      return self.signum is not None
    if not self.enabled:
      return False
    if multihost_utils.reached_preemption_sync_point(step):
      if self.signum is None:  # SIGTERM went to JAX's handler, not ours
        self.signum = signal.SIGTERM
      return True
    return False
