"""SIGKILL at every stage of a tiny run, then the same command: same result.

One workdir is killed at each kill point of `capjax.faults` in turn (each
run resumes what the previous one left), then run to the end; its results
must equal, byte for byte, those of an uninterrupted run. A finished run
started again changes nothing and exits 0.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

from absl.testing import absltest
import jax
import numpy as np

from capjax import checkpointing
from capjax import faults

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = ('--config.train.num_steps=8', '--config.train.checkpoint_every=4',
            '--config.train.validate_every=4', '--config.train.log_every=4',
            '--config.eval.splits=("test",)', '--config.eval.gallery_size=2')
# The kill points in the order one workdir meets them; 'prepare' comes first,
# on a data dir nothing has prepared yet.
CHAIN = ('prepare', 'train:2', 'save:4', 'validate:4', 'best_save:4',
         'evaluate', 'eval_write')
RESULT_FILES = ('test_metrics.json', 'test_captions.json')


def _run(workdir, data_dir, kill_at=None):
  env = dict(os.environ)
  env.pop(faults.KILL_ENV, None)
  if kill_at:
    env[faults.KILL_ENV] = kill_at
  return subprocess.run(
      [sys.executable, '-m', 'capjax.main',
       '--config=configs/captioning/shapes.py:tiny', f'--workdir={workdir}',
       f'--config.dataset.data_dir={data_dir}', *SETTINGS],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def _read(path):
  with open(path, 'rb') as f:
    return f.read()


class KillPointsTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root = tempfile.mkdtemp(prefix='capjax-kill-test-')
    self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)

  def test_every_kill_point_resumes_to_an_uninterrupted_result(self):
    data_dir = os.path.join(self.root, 'data')
    whole = os.path.join(self.root, 'whole')
    killed = os.path.join(self.root, 'killed')
    self.assertEqual({p.split(':')[0] for p in CHAIN}, set(faults.POINTS))
    for index, point in enumerate(CHAIN):
      done = _run(killed, data_dir, point)
      self.assertEqual(done.returncode, -signal.SIGKILL,
                       f'{point} was never reached: {done.stderr[-1500:]}')
      if index == 0:  # the data dir is now half prepared: the whole run
        done = _run(whole, data_dir)  # must prepare it again, and finish
        self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    done = _run(killed, data_dir)
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    for name in RESULT_FILES:
      self.assertEqual(_read(os.path.join(whole, 'eval', name)),
                       _read(os.path.join(killed, 'eval', name)), name)
    for which in ('latest', 'best'):
      _, _, expected, step = checkpointing.restore_trained(whole, which)
      _, _, got, got_step = checkpointing.restore_trained(killed, which)
      self.assertEqual(step, got_step, which)
      for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(got)):
        np.testing.assert_array_equal(a, b)

    listing = sorted(os.listdir(os.path.join(killed, 'checkpoints')))
    metrics = _read(os.path.join(killed, 'eval', 'test_metrics.json'))
    again = _run(killed, data_dir)
    self.assertEqual(again.returncode, 0, again.stderr[-2000:])
    self.assertIn('nothing to do', again.stderr)
    self.assertEqual(sorted(os.listdir(os.path.join(killed, 'checkpoints'))),
                     listing)
    self.assertEqual(_read(os.path.join(killed, 'eval', 'test_metrics.json')),
                     metrics)


if __name__ == '__main__':
  absltest.main()
