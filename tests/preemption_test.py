"""SIGTERM and Ctrl-C in training: the step in flight is saved, then resumed.

The signals are real ones a run sends itself at a chosen step through the
kill points of `capjax.faults` (`CAPJAX_KILL_AT=train:6=SIGTERM`), so the
step they arrive at is known without sleeping.
"""

import os
import shlex
import shutil
import signal
import tempfile
from unittest import mock

from absl.testing import absltest
import jax

from capjax import checkpointing
from capjax import faults
from capjax import preemption
from capjax import train
from configs.captioning import shapes as shapes_config
from tests import tiny_runs

_command, _run = tiny_runs.command, tiny_runs.run


def _steps(workdir):
  return sorted(int(d) for d in os.listdir(os.path.join(workdir, 'checkpoints'))
                if d.isdigit())


class StopSignalsCommandTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root = tempfile.mkdtemp(prefix='capjax-preempt-test-')
    self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)

  def _assert_stopped_line(self, done, signame, step, workdir, data_dir):
    self.assertNotIn('Traceback', done.stderr)
    line = done.stderr.strip().splitlines()[-1]
    head = (f'error: Stopped by {signame} after saving step {step} of '
            f'{workdir}: resume with ')
    self.assertStartsWith(line, head)
    self.assertEqual(shlex.split(line[len(head):]),
                     ['python', '-m', 'capjax.main',
                      *_command(workdir, data_dir)])

  def test_stopped_runs_save_their_step_and_resume_to_the_same_result(self):
    data_dir = os.path.join(self.root, 'data')
    whole = os.path.join(self.root, 'whole')
    stopped = os.path.join(self.root, 'stopped')
    done = _run(whole, data_dir)
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])

    # Ctrl-C after step 2, between the saves every 4 steps: step 2 is saved.
    done = _run(stopped, data_dir, 'train:2=SIGINT')
    self.assertEqual(done.returncode, 130, done.stderr[-2000:])
    self._assert_stopped_line(done, 'SIGINT', 2, stopped, data_dir)
    self.assertEqual(_steps(stopped), [2])
    self.assertEqual(checkpointing.restore_trained(stopped)[3], 2)

    # (A SIGKILL during a save leaving the previous step the latest is
    # kill_points_test's `save:4`; the stop's save is the same save.)
    # SIGTERM after step 6 and again during its save: the save ends first.
    done = _run(stopped, data_dir, 'train:6=SIGTERM,save:6=SIGTERM')
    self.assertEqual(done.returncode, 143, done.stderr[-2000:])
    self.assertIn('SIGTERM again: the final save ends first', done.stderr)
    self._assert_stopped_line(done, 'SIGTERM', 6, stopped, data_dir)
    self.assertEqual(_steps(stopped)[-1], 6)
    self.assertEqual(checkpointing.restore_trained(stopped)[3], 6)

    done = _run(stopped, data_dir)
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    tiny_runs.assert_same_results(self, whole, stopped)


def _sentinel(signum, frame):
  del signum, frame


class StopSignalsInProcessTest(absltest.TestCase):

  def test_sigterm_in_process_saves_the_step_and_restores_handlers(self):
    root = tempfile.mkdtemp(prefix='capjax-preempt-test-')
    self.addCleanup(shutil.rmtree, root, ignore_errors=True)
    config = shapes_config.get_config('tiny')
    config.dataset.data_dir = os.path.join(root, 'data')
    config.train.num_steps = 8
    config.train.checkpoint_every = 4
    config.eval.splits = ('test',)
    workdir = os.path.join(root, 'run')
    previous = {s: signal.signal(s, _sentinel) for s in preemption.SIGNALS}
    self.addCleanup(lambda: [signal.signal(s, h) for s, h in previous.items()])
    with mock.patch.dict(os.environ, {faults.KILL_ENV: 'train:3=SIGTERM'}):
      with self.assertRaises(preemption.Stopped) as caught:
        train.train_and_evaluate(config, workdir)
    self.assertEqual((caught.exception.signum, caught.exception.step),
                     (signal.SIGTERM, 3))
    self.assertEqual(_steps(workdir), [3])
    for signum in preemption.SIGNALS:
      self.assertIs(signal.getsignal(signum), _sentinel)


class StopSignalsTest(absltest.TestCase):

  def test_one_process_stops_on_its_own_flag(self):
    with preemption.StopSignals(multiprocess=False) as stop:
      self.assertFalse(stop.should_stop(1))
      signal.raise_signal(signal.SIGTERM)
      self.assertTrue(stop.should_stop(2))
    self.assertEqual(stop.signum, signal.SIGTERM)

  def test_a_second_signal_before_the_save_stops_at_once(self):
    with preemption.StopSignals(multiprocess=False):
      signal.raise_signal(signal.SIGINT)
      with self.assertRaises(preemption.Stopped) as caught:
        signal.raise_signal(signal.SIGINT)
    self.assertIsNone(caught.exception.step)

  def test_several_processes_stop_where_jax_syncs_them(self):
    before = signal.getsignal(signal.SIGTERM)
    answers = iter([False, False, True])
    with mock.patch.object(
        preemption.multihost_utils, 'reached_preemption_sync_point',
        side_effect=lambda step: next(answers)) as sync:
      with preemption.StopSignals(multiprocess=True) as stop:
        # JAX's preemption service keeps SIGTERM.
        self.assertIs(signal.getsignal(signal.SIGTERM), before)
        self.assertEqual([stop.should_stop(s) for s in (4, 5, 6)],
                         [False, False, True])
    self.assertEqual([c.args for c in sync.call_args_list], [(4,), (5,), (6,)])
    self.assertEqual(stop.signum, signal.SIGTERM)

  def test_without_the_preemption_service_nothing_is_caught(self):
    before = {s: signal.getsignal(s) for s in preemption.SIGNALS}
    with mock.patch.object(
        preemption.multihost_utils, 'reached_preemption_sync_point',
        side_effect=RuntimeError('not initialized')):
      self.addCleanup(jax.config.update, 'jax_enable_preemption_service',
                      jax.config.jax_enable_preemption_service)
      jax.config.update('jax_enable_preemption_service', False)
      with preemption.StopSignals(multiprocess=True) as stop:
        self.assertFalse(stop.should_stop(1))
        self.assertEqual({s: signal.getsignal(s) for s in before}, before)

  def test_exit_codes_are_the_shells(self):
    self.assertEqual(preemption.exit_code(signal.SIGINT), 130)
    self.assertEqual(preemption.exit_code(signal.SIGTERM), 143)


class KillPointSignalsTest(absltest.TestCase):

  def test_each_listed_point_sends_its_own_signal(self):
    received = []
    previous = signal.signal(signal.SIGTERM,
                             lambda signum, frame: received.append(signum))
    self.addCleanup(signal.signal, signal.SIGTERM, previous)
    with mock.patch.dict(os.environ,
                         {faults.KILL_ENV: 'save:9,train:6=SIGTERM'}):
      faults.kill_point('train', 5)
      self.assertEqual(received, [])
      faults.kill_point('train', 6)
      self.assertEqual(received, [signal.SIGTERM])

  def test_an_unknown_signal_is_named(self):
    with mock.patch.dict(os.environ, {faults.KILL_ENV: 'train:6=SIGHUP'}):
      with self.assertRaisesRegex(ValueError, "'SIGHUP' is not SIGKILL"):
        faults.kill_point('train', 6)


if __name__ == '__main__':
  absltest.main()
