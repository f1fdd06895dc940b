"""Helpers of the tests that build tiny workdirs: a config file by path, one
saved step, and a tiny training command stopped and resumed."""

import importlib.util
import os
import subprocess
import sys

import jax
import numpy as np

from capjax import checkpointing
from capjax import faults

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 8 steps, saves and validation every 4, the test split only.
SETTINGS = ('--config.train.num_steps=8', '--config.train.checkpoint_every=4',
            '--config.train.validate_every=4', '--config.train.log_every=4',
            '--config.eval.splits=("test",)', '--config.eval.gallery_size=2')
RESULT_FILES = ('test_metrics.json', 'test_captions.json')


def config_file(path: str, arg: str):
  """`get_config(arg)` of configs/PATH (e.g. 'tags/shapes.py')."""
  spec = importlib.util.spec_from_file_location(
      'cfg_' + path.replace('/', '_')[:-3],
      os.path.join(REPO, 'configs', path))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def save_step(workdir: str, params, config, meta) -> None:
  """Saves `params` as step 1 of `workdir` (an untrained run to load)."""
  saver = checkpointing.Checkpointer(workdir, keep=1)
  saver.save(1, {'params': params, 'step': 1}, config, meta)
  saver.wait()
  saver.close()


def command(workdir: str, data_dir: str) -> list[str]:
  """The flags of `capjax.main` for the tiny shapes run in `workdir`."""
  return ['--config=configs/captioning/shapes.py:tiny', f'--workdir={workdir}',
          f'--config.dataset.data_dir={data_dir}', *SETTINGS]


def run(workdir: str, data_dir: str,
        kill_at: str | None = None) -> subprocess.CompletedProcess:
  """Runs the tiny command, stopped at `kill_at` (`faults.KILL_ENV`)."""
  env = dict(os.environ)
  env.pop(faults.KILL_ENV, None)
  if kill_at:
    env[faults.KILL_ENV] = kill_at
  return subprocess.run(
      [sys.executable, '-m', 'capjax.main', *command(workdir, data_dir)],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def read(path: str) -> bytes:
  with open(path, 'rb') as f:
    return f.read()


def assert_same_results(test, whole: str, other: str) -> None:
  """`other` ended with the eval files and checkpoints of `whole`, exactly."""
  for name in RESULT_FILES:
    test.assertEqual(read(os.path.join(whole, 'eval', name)),
                     read(os.path.join(other, 'eval', name)), name)
  for which in ('latest', 'best'):
    _, _, expected, step = checkpointing.restore_trained(whole, which)
    _, _, got, got_step = checkpointing.restore_trained(other, which)
    test.assertEqual(step, got_step, which)
    for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(got)):
      np.testing.assert_array_equal(a, b)
