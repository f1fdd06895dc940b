r"""Train and evaluate any task: captioners, language models, retrieval.

  python -m capjax.main --config=configs/captioning/shapes.py \
      --workdir=runs/shapes --config.train.num_steps=500

Running the same command again resumes from the workdir's latest checkpoint.
SIGTERM (a preemption notice) or Ctrl-C during training saves the step in
flight first and exits 143 or 130.
On several hosts, start one process per host with --coordinator_address,
--num_processes and --process_id (see launch/).
"""

import shlex
import signal
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from capjax import checkpointing
from capjax import config_checks
from capjax import flag_errors
from capjax import logs
from capjax import parallel
from capjax import preemption
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
INTERRUPTED_EXIT = 130  # the shell's code for a command stopped by Ctrl-C


def interrupted_message(workdir: str) -> str:
  """What to do after Ctrl-C: run again; it resumes from the latest step."""
  try:
    _, step = checkpointing.find_checkpoint(workdir)
  except (FileNotFoundError, ValueError):
    return (f'Interrupted before {workdir} had a checkpoint: run the same '
            'command again to start it again.')
  return (f'Interrupted: run the same command again to resume {workdir} '
          f'from its latest checkpoint (step {step}).')


def stopped_message(stopped: preemption.Stopped, workdir: str) -> str:
  """After SIGTERM or Ctrl-C in training: the step saved, how to resume."""
  if stopped.step is None:  # a second signal: whatever was saved before
    return interrupted_message(workdir)
  command = shlex.join(['python', '-m', 'capjax.main', *sys.argv[1:]])
  return (f'Stopped by {signal.Signals(stopped.signum).name} after saving '
          f'step {stopped.step} of {workdir}: resume with {command}')


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
  except preemption.Stopped as e:  # SIGTERM or Ctrl-C in training: saved
    print(f'error: {stopped_message(e, _WORKDIR.value)}', file=sys.stderr)
    sys.exit(preemption.exit_code(e.signum))
  except KeyboardInterrupt:  # Ctrl-C: what was saved resumes as a SIGKILL
    print(f'error: {interrupted_message(_WORKDIR.value)}', file=sys.stderr)
    sys.exit(INTERRUPTED_EXIT)
  report.print_summary(results, _WORKDIR.value)


if __name__ == '__main__':
  app.run(main, flags_parser=flag_errors.parse_flags)
