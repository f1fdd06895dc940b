"""Log set-up for the entry points: capjax's progress, libraries' warnings."""

import logging as std_logging
import os

from absl import flags
from absl import logging

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class _CapjaxInfoOnly(std_logging.Filter):
  """Passes warnings from anywhere, and info lines only from capjax."""

  def filter(self, record: std_logging.LogRecord) -> bool:
    return (
        record.levelno >= std_logging.WARNING
        or record.pathname.startswith(_PACKAGE_DIR)
    )


def verbosity_given() -> bool:
  """Whether the command line set absl's `--verbosity` (`-v`)."""
  return flags.FLAGS.is_parsed() and bool(flags.FLAGS['verbosity'].present)


def quiet_libraries(progress: bool = True) -> None:
  """Keeps Orbax's and TFDS's info chatter out of the run's log.

  Args:
    progress: show capjax's own info lines and progress lines (training
      steps, evaluation, feature extraction); False leaves warnings and
      errors only. A `--verbosity` given on the command line wins:
      `--verbosity=-1` silences them, `--verbosity=0` shows them.
  """
  if not verbosity_given():
    logging.set_verbosity(logging.INFO if progress else logging.WARNING)
  handler = logging.get_absl_handler()
  if not any(isinstance(f, _CapjaxInfoOnly) for f in handler.filters):
    handler.addFilter(_CapjaxInfoOnly())
