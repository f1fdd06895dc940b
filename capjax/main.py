r"""Train and evaluate any task: captioners, language models, retrieval.

  python -m capjax.main --config=configs/captioning/shapes.py \
      --workdir=runs/shapes --config.train.num_steps=500

Running the same command again resumes from the workdir's latest checkpoint.
On several hosts, start one process per host with --coordinator_address,
--num_processes and --process_id (see launch/).
"""

import re
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from capjax import checkpointing
from capjax import config_checks
from capjax import logs
from capjax import parallel
from capjax import report
from capjax import train
from capjax.data import feature_source

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file (configs/*.py[:variant]).',
    lock_config=True,
)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Directory for checkpoints, summaries and results.'
)
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', '', 'host:port of process 0, for multi-host runs.'
)
_NUM_PROCESSES = flags.DEFINE_integer(
    'num_processes', 0, 'Number of processes of a multi-host run.'
)
_PROCESS_ID = flags.DEFINE_integer(
    'process_id', -1, 'This process of a multi-host run.'
)
flags.mark_flags_as_required(['config', 'workdir'])


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing, with one-line errors for a bad --config.

  ml_collections reports an unknown `--config.a.b=...` key, a variant the
  config file does not know, or a value of the wrong type with a traceback;
  this turns them into a line that names the flag and what to do.
  """
  try:
    args = flags.FLAGS(argv)
    if flags.FLAGS['config'].present:
      _ = _CONFIG.value.keys()  # a config file that failed to load says so here
    return args
  except OSError as e:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    print(f'error: could not load the config file: {lines[-1]}',
          file=sys.stderr)
    sys.exit(2)
  except flags.Error as e:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    detail = lines[0] if len(lines) == 1 else f'{lines[0]} {lines[-1]}'
    print(f'error: {detail}', file=sys.stderr)
    sys.exit(2)
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    overrides = [a.split('=', 1)[0][2:] for a in argv[1:]
                 if a.startswith('--config.')]
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
      key = bad[0][len('config.'):]
      print(f'error: unknown config key {key!r} (from --{bad[0]}): the '
            f'config file has no such field.{hint}', file=sys.stderr)
    else:
      print(f'error: bad --config: {first}{hint}', file=sys.stderr)
    sys.exit(2)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logs.quiet_libraries()
  parallel.initialize_distributed(
      _COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value
  )
  try:
    results = train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except (checkpointing.CheckpointMismatchError, config_checks.ConfigError,
          train.MetaMismatchError, feature_source.FeaturesError,
          PermissionError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
  report.print_summary(results, _WORKDIR.value)


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
