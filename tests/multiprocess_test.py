"""Two local processes (a stand-in for two hosts) match a single process."""

import json
import os
import re
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


def _two_processes(root, workdir, kill_at_process_1=''):
  """Runs capjax.main as 2 processes; process 1 may get CAPJAX_KILL_AT."""
  port = _free_port()
  command = [sys.executable, '-m', 'capjax.main',
             '--config=configs/captioning/shapes.py:tiny',
             f'--workdir={workdir}',
             f'--config.dataset.data_dir={os.path.join(root, "data")}',
             '--config.train.checkpoint_every=8', '--config.train.log_every=4',
             *STEPS, f'--coordinator_address=127.0.0.1:{port}',
             '--num_processes=2']
  processes = []
  for index in range(2):
    env = dict(os.environ, JAX_PLATFORMS='cpu',
               XLA_FLAGS='--xla_force_host_platform_device_count=1')
    env.pop('CAPJAX_KILL_AT', None)
    if index == 1 and kill_at_process_1:
      env['CAPJAX_KILL_AT'] = kill_at_process_1
    processes.append(subprocess.Popen(
        [*command, f'--process_id={index}'], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
  return [(p.communicate(timeout=900)[1], p.returncode) for p in processes]


class MultiProcessTest(absltest.TestCase):

  def test_sigterm_to_one_process_stops_both_at_one_saved_step(self):
    root = tempfile.mkdtemp(prefix='capjax-mp-')
    self.addCleanup(shutil.rmtree, root, ignore_errors=True)
    whole = os.path.join(root, 'whole')
    stopped = os.path.join(root, 'stopped')
    for stderr, code in _two_processes(root, whole):
      self.assertEqual(code, 0, stderr[-2000:])
    # Only process 1 gets SIGTERM (after step 3); JAX's preemption service
    # tells process 0, and both save the same step (between the regular
    # saves, every 8 steps), then stop.
    ends = _two_processes(root, stopped, 'train:3=SIGTERM')
    steps = set()
    for stderr, code in ends:
      self.assertEqual(code, 143, stderr[-2000:])
      found = re.search(r'^error: Stopped by SIGTERM after saving step (\d+) '
                        f'of {re.escape(stopped)}: resume with ', stderr,
                        re.MULTILINE)
      self.assertIsNotNone(found, stderr[-2000:])
      steps.add(int(found.group(1)))
    self.assertLen(steps, 1)
    step = steps.pop()
    self.assertBetween(step, 3, 7)
    self.assertIn(str(step), os.listdir(os.path.join(stopped, 'checkpoints')))
    for stderr, code in _two_processes(root, stopped):
      self.assertEqual(code, 0, stderr[-2000:])
      self.assertIn(f'Resumed from step {step}', stderr)

    def metrics(workdir):
      with open(os.path.join(workdir, 'eval', 'test_metrics.json')) as f:
        return json.load(f)

    self.assertEqual(metrics(whole), metrics(stopped))


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
