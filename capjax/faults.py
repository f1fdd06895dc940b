"""Named kill points, so tests can SIGKILL a run at a chosen stage.

A long job calls `kill_point(name, step)` where a crash would hurt most (in
the middle of preparing a dataset, of a checkpoint save, of a validation).
Nothing happens unless the environment variable `CAPJAX_KILL_AT` names that
point (`name`, or `name:step` for one step only); then the process kills
itself with SIGKILL, the one signal nothing can clean up after, exactly as
a preempted machine or an out-of-memory kill would. The kill-point tests
then run the same command again and compare with an uninterrupted run.
"""

import os
import signal

KILL_ENV = 'CAPJAX_KILL_AT'
# Every kill point, in the order a run meets them.
POINTS = ('prepare', 'train', 'save', 'validate', 'best_save', 'evaluate',
          'eval_write')


def kill_point(name: str, step: int | None = None) -> None:
  """SIGKILLs this process when `CAPJAX_KILL_AT` is `name` or `name:step`."""
  wanted = os.environ.get(KILL_ENV)
  if not wanted:
    return
  if wanted == name or (step is not None and wanted == f'{name}:{step}'):
    os.kill(os.getpid(), signal.SIGKILL)
