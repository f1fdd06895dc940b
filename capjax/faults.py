"""Named kill points, so tests can signal a run at a chosen stage.

A long job calls `kill_point(name, step)` where a crash would hurt most (in
the middle of preparing a dataset, of a checkpoint save, of a validation).
Nothing happens unless the environment variable `CAPJAX_KILL_AT` names that
point (`name`, or `name:step` for one step only); then the process kills
itself with SIGKILL, the one signal nothing can clean up after, exactly as
a preempted machine or an out-of-memory kill would. The kill-point tests
then run the same command again and compare with an uninterrupted run.

`CAPJAX_KILL_AT` may name several points, comma-separated, and each may end
in `=SIGTERM` or `=SIGINT` to send that signal instead (what a scheduler
sends before it preempts a job, and Ctrl-C): `train:6=SIGTERM,save:6`
sends SIGTERM after step 6 and SIGKILL while step 6 is being saved.
"""

import os
import signal

KILL_ENV = 'CAPJAX_KILL_AT'
# Every kill point, in the order a run meets them.
POINTS = ('prepare', 'train', 'save', 'validate', 'best_save', 'evaluate',
          'eval_write')


def kill_point(name: str, step: int | None = None) -> None:
  """Signals this process when `CAPJAX_KILL_AT` names `name` or `name:step`.

  Raises:
    ValueError: `CAPJAX_KILL_AT` names a signal other than SIGKILL, SIGTERM
      and SIGINT.
  """
  wanted = os.environ.get(KILL_ENV)
  if not wanted:
    return
  for entry in wanted.split(','):
    point, _, signal_name = entry.partition('=')
    if point == name or (step is not None and point == f'{name}:{step}'):
      signal_name = signal_name or 'SIGKILL'
      if signal_name not in ('SIGKILL', 'SIGTERM', 'SIGINT'):
        raise ValueError(f'{KILL_ENV}={wanted!r}: {signal_name!r} is not '
                         'SIGKILL, SIGTERM or SIGINT.')
      os.kill(os.getpid(), signal.Signals[signal_name])
