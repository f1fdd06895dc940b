"""SIGKILL at every stage of a tiny run, then the same command: same result.

One workdir is killed at each kill point of `capjax.faults` in turn (each
run resumes what the previous one left), then run to the end; its results
must equal, byte for byte, those of an uninterrupted run. A finished run
started again changes nothing and exits 0.
"""

import os
import shutil
import signal
import tempfile

from absl.testing import absltest

from capjax import faults
from tests import tiny_runs

# The kill points in the order one workdir meets them; 'prepare' comes first,
# on a data dir nothing has prepared yet.
CHAIN = ('prepare', 'train:2', 'save:4', 'validate:4', 'best_save:4',
         'evaluate', 'eval_write')
_run, _read = tiny_runs.run, tiny_runs.read


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
    tiny_runs.assert_same_results(self, whole, killed)

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
