"""absl flag parsing for the commands that take `--config`: one-line errors.

ml_collections reports a config file that does not exist, an unknown
`--config.KEY=...` key, a variant the config file does not know, or a value
of the wrong type with a long traceback; `parse_flags` (given to `app.run`
as its `flags_parser`) turns each into one `error:` line that names the flag
and what to do, and exits with code 2 as absl does for a bad flag.
"""

import re
import sys
from typing import NoReturn

from absl import flags

CONFIG_FLAG = 'config'  # the config_flags.DEFINE_config_file flag's name
BAD_FLAG_EXIT = 2  # absl's exit code for a bad command line


def fail(message: str) -> NoReturn:
  """Ends a command with a bad command line: one `error:` line, exit 2."""
  print(f'error: {message}', file=sys.stderr)
  sys.exit(BAD_FLAG_EXIT)


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing, with one-line errors for a bad --config.

  Args:
    argv: the command line, program name first.

  Returns:
    The arguments that are not flags, program name first.
  """
  try:
    args = flags.FLAGS(argv)
    if CONFIG_FLAG in flags.FLAGS and flags.FLAGS[CONFIG_FLAG].present:
      # A config file that failed to load says so here.
      _ = flags.FLAGS[CONFIG_FLAG].value.keys()
    return args
  except OSError as e:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    fail(f'could not load the config file: {lines[-1]}')
  except flags.Error as e:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    fail(lines[0] if len(lines) == 1 else f'{lines[0]} {lines[-1]}')
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    prefix = f'--{CONFIG_FLAG}.'
    overrides = [a.split('=', 1)[0][2:] for a in argv[1:]
                 if a.startswith(prefix)]
    # ml_collections wraps a KeyError (whose str() is the repr of its
    # message) in other errors; the message names the key in quotes and,
    # when it has one, adds a "Did you mean" line.
    while e.args and isinstance(e.args[0], BaseException):
      e = e.args[0]
    message = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    first, *rest = message.splitlines() or ['']
    names = set(re.findall(r'[\'"]([\w.]+)[\'"]', first)) or {first.strip()}
    hint = f' {rest[0].strip()}' if rest else ''
    bad = [o for o in overrides if names & set(o.split('.')[1:])]
    if bad:
      key = bad[0][len(CONFIG_FLAG) + 1:]
      fail(f'unknown config key {key!r} (from --{bad[0]}): the config file '
            f'has no such field.{hint}')
    fail(f'bad --{CONFIG_FLAG}: {first}{hint}')
  return []  # not reached: fail exits
