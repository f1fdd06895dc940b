"""Flag checks of the benchmark entry point, run before anything is timed."""

from capjax.benchmarks import decode
from capjax.benchmarks import dtypes
from capjax.benchmarks import extract
from capjax.benchmarks import finetune_step
from capjax.benchmarks import frozen_step
from capjax.benchmarks import retrieval
from capjax.benchmarks import train_step
from capjax.benchmarks import weights_read

MODEL_BENCHMARKS = ('train_step', 'train_parts', 'decode', 'compile')


def check_config(what: str, config: dict) -> None:
  """Raises ValueError naming the bad flag of benchmark `what`.

  Args:
    what: the benchmark's name ('train_step', 'decode', ...).
    config: the flags as `capjax.benchmark.flag_config` gives them.
  """
  batch = config.get('batch')
  if batch is not None and batch < 1:
    raise ValueError(f'--batch must be >= 1, got {batch}.')
  if what in MODEL_BENCHMARKS:
    train_step.model_size(config)
    dtypes.from_config(config)
  if what == 'decode':
    decode.check_modes(config.get('modes'))
  if what == 'retrieval':
    retrieval.check_model(config.get('model'))
  if what == 'extract':
    extract.check(config)
  if what == 'finetune_step':
    finetune_step.check(config)
  if what == 'frozen_step':
    frozen_step.check(config)
  if what == 'weights_read':
    weights_read.check(config)
