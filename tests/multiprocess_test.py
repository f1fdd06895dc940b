"""Two local processes (a stand-in for two hosts) match a single process."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

from absl.testing import absltest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = ['--config.train.num_steps=8', '--config.eval.splits=("test",)',
         '--config.train.best_metric=']


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


class MultiProcessTest(absltest.TestCase):

  def test_two_processes_give_the_numbers_of_one(self):
    root = tempfile.mkdtemp(prefix='capjax-mp-')
    self.addCleanup(shutil.rmtree, root, ignore_errors=True)
    data = f'--config.dataset.data_dir={os.path.join(root, "data")}'
    config = '--config=configs/captioning/shapes.py:tiny'
    env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=2')
    single = subprocess.run(
        [sys.executable, '-m', 'capjax.main', config,
         f'--workdir={root}/single', data, *STEPS],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    self.assertEqual(single.returncode, 0, single.stderr[-2000:])

    env = dict(os.environ, PYTHON=sys.executable, LOGDIR=root,
               PORT=str(_free_port()), DEVICES_PER_PROCESS='1')
    multi = subprocess.run(
        ['launch/local_multiprocess.sh', '2', config,
         f'--workdir={root}/multi', data, *STEPS],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    logs = ''.join(open(os.path.join(root, f'process_{i}.log')).read()[-1500:]
                   for i in range(2) if os.path.exists(
                       os.path.join(root, f'process_{i}.log')))
    self.assertEqual(multi.returncode, 0, multi.stderr + logs)
    self.assertIn('Process 1 of 2; 1 local and 2 global devices', logs)

    def metrics(run):
      with open(os.path.join(root, run, 'eval', 'test_metrics.json')) as f:
        return json.load(f)

    one, two = metrics('single'), metrics('multi')
    self.assertEqual(one.keys(), two.keys())
    for key in one:
      self.assertAlmostEqual(one[key], two[key], delta=1e-4, msg=key)


if __name__ == '__main__':
  absltest.main()
