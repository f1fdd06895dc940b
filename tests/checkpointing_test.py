"""Tests of checkpoints: keep K, keep the best, carry config and vocabulary."""

import glob
import os
import shutil
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import jax.numpy as jnp
import numpy as np

from capjax import checkpointing
from capjax import config_base

VOCAB = {'format': 'test', 'words': ['<pad>', '<bos>', '<eos>', '<unk>', 'a']}


def _state(value):
  return {'step': jnp.asarray(value), 'params': {'w': jnp.full((2,), value)}}


class DescribeMismatchTest(absltest.TestCase):

  def test_names_missing_unexpected_and_reshaped_paths(self):
    saved = {'a': {'k': np.zeros((2, 3))}, 'b': np.zeros(1), 'c': np.zeros(2)}
    wanted = {'a': {'k': np.zeros((2, 4))}, 'b': np.zeros(1),
              'd': [np.zeros(1), np.zeros(1)]}
    self.assertEqual(
        checkpointing.describe_mismatch(saved, wanted),
        'missing d/0, d/1; unexpected c; other shape a/k (2, 3) instead of '
        '(2, 4)')
    self.assertEqual(checkpointing.describe_mismatch(saved, saved), '')

  def test_long_lists_are_cut(self):
    wanted = {f'p{i}': np.zeros(1) for i in range(5)}
    self.assertEqual(checkpointing.describe_mismatch({}, wanted, most=2),
                     'missing p0, p1 (+3 more)')


class CheckpointerTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.workdir = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, self.workdir)
    self.config = config_base.base_config()

  def test_a_checkpoint_of_another_model_is_refused_by_name(self):
    checkpointer = checkpointing.Checkpointer(self.workdir, keep=2)
    checkpointer.save(10, _state(10), self.config, VOCAB)
    checkpointer.wait()
    other = {'step': jnp.asarray(0),
             'params': {'w': jnp.zeros((3,)), 'v': jnp.zeros((1,))}}
    with self.assertRaisesRegex(
        checkpointing.CheckpointMismatchError,
        r'checkpoints/10 holds another model .*missing v; other shape w '
        r'\(2,\) instead of \(3,\)'):
      checkpointer.restore(10, other)
    checkpointer.close()

  def test_a_relative_workdir_saves_and_restores(self):
    # `make demo` trains into runs/demo; Orbax itself wants absolute paths.
    self.addCleanup(os.chdir, os.getcwd())
    os.chdir(self.workdir)
    checkpointer = checkpointing.Checkpointer(os.path.join('runs', 'x'),
                                              keep=2)
    checkpointer.save(5, _state(5), self.config, VOCAB)
    checkpointer.wait()
    restored = checkpointer.restore(5, _state(0))
    np.testing.assert_array_equal(restored['params']['w'], [5, 5])
    checkpointer.close()
    _, _, params, step = checkpointing.restore_trained(
        os.path.join('runs', 'x'))
    self.assertEqual(step, 5)
    np.testing.assert_array_equal(params['w'], [5, 5])

  def test_keeps_the_last_k_and_restores_the_latest(self):
    checkpointer = checkpointing.Checkpointer(self.workdir, keep=2)
    for step in (10, 20, 30):
      checkpointer.save(step, _state(step), self.config, VOCAB)
    checkpointer.wait()
    self.assertEqual(
        sorted(os.listdir(os.path.join(self.workdir, 'checkpoints'))),
        ['20', '30'])
    self.assertEqual(checkpointer.latest_step(), 30)
    restored = checkpointer.restore(30, _state(0))
    np.testing.assert_array_equal(restored['params']['w'], [30, 30])
    checkpointer.close()

  def test_best_checkpoint_is_the_highest_metric(self):
    checkpointer = checkpointing.Checkpointer(
        self.workdir, keep=1, best_metric='CIDEr')
    for step, cider in ((10, 0.5), (20, 0.9), (30, 0.7)):
      checkpointer.save_if_best(step, _state(step), self.config, VOCAB,
                                {'CIDEr': cider})
    checkpointer.wait()
    directory, step = checkpointing.find_checkpoint(self.workdir, 'best')
    self.assertEqual(step, 20)
    self.assertEqual(directory, os.path.join(self.workdir, 'best'))
    checkpointer.close()

  def test_a_checkpoint_carries_its_config_and_vocabulary(self):
    checkpointer = checkpointing.Checkpointer(self.workdir, keep=1)
    self.config.model.hidden_dim = 77
    checkpointer.save(5, _state(5), self.config, VOCAB)
    checkpointer.wait()
    config, vocab, params, step = checkpointing.restore_trained(self.workdir)
    self.assertEqual(step, 5)
    self.assertEqual(config.model.hidden_dim, 77)
    self.assertEqual(vocab, VOCAB)
    np.testing.assert_array_equal(params['w'], [5, 5])
    checkpointer.close()

  def test_an_unfinished_save_is_not_a_checkpoint(self):
    checkpointer = checkpointing.Checkpointer(self.workdir, keep=3)
    checkpointer.save(10, _state(10), self.config, VOCAB)
    checkpointer.wait()
    checkpointer.close()
    # What a run killed while writing step 20 leaves behind.
    partial = os.path.join(self.workdir, 'checkpoints',
                           '20.orbax-checkpoint-tmp-1234')
    os.makedirs(os.path.join(partial, 'state'))
    _, step = checkpointing.find_checkpoint(self.workdir)
    self.assertEqual(step, 10)

  def test_missing_checkpoints_are_named(self):
    with self.assertRaisesRegex(FileNotFoundError, 'does not exist'):
      checkpointing.find_checkpoint(os.path.join(self.workdir, 'nope'))
    with self.assertRaisesRegex(FileNotFoundError,
                                'No best checkpoint in .*best'):
      checkpointing.find_checkpoint(self.workdir, 'best')


def _data_files(step_dir):
  """The array data files of a saved step, largest first."""
  files = glob.glob(os.path.join(step_dir, 'state', '**', 'd', '*'),
                    recursive=True)
  return sorted(files, key=os.path.getsize, reverse=True)


def _damage(step_dir, kind):
  """Damages a saved step as a failing disk or a careless user would."""
  if kind == 'truncated data file':
    largest = _data_files(step_dir)[0]
    os.truncate(largest, os.path.getsize(largest) // 2)
  elif kind == 'deleted data file':
    os.remove(_data_files(step_dir)[0])
  elif kind == 'deleted _METADATA':
    os.remove(os.path.join(step_dir, 'state', '_METADATA'))
  else:  # 'cut config JSON', 'cut meta JSON'
    item = kind.split()[1]
    path = os.path.join(step_dir, item, 'metadata')
    os.truncate(path, os.path.getsize(path) // 2)


# Each damage and what the warning must name.
DAMAGES = (
    ('truncated data file', r'file .*/checkpoints/20/state/.*d/\w+ is '
     r'truncated'),
    ('deleted data file', r'file .*/checkpoints/20/state/.*d/\w+ is missing'),
    ('deleted _METADATA', r'checkpoints/20/state/_METADATA is missing'),
    ('cut config JSON', r'its config \(.*/20/config\) is not valid JSON'),
    ('cut meta JSON', r'its meta \(.*/20/meta\) is not valid JSON'),
)


class DamagedCheckpointTest(parameterized.TestCase):
  """A damaged newest step is named and the newest intact one used."""

  def setUp(self):
    super().setUp()
    self.workdir = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, self.workdir)
    self.config = config_base.base_config()
    self.checkpointer = checkpointing.Checkpointer(self.workdir, keep=3)
    self.addCleanup(self.checkpointer.close)
    for step in (10, 20):
      self.checkpointer.save(step, _state(step), self.config, VOCAB)
    self.checkpointer.wait()

  def _step_dir(self, step):
    return os.path.join(self.workdir, 'checkpoints', str(step))

  @parameterized.parameters(*DAMAGES)
  def test_readers_fall_back_to_the_previous_step(self, kind, named):
    _damage(self._step_dir(20), kind)
    with self.assertLogs(level='WARNING') as logs:
      config, vocab, params, step = checkpointing.restore_trained(
          self.workdir)
    self.assertEqual(step, 10)
    np.testing.assert_array_equal(params['w'], [10, 10])
    self.assertEqual((vocab, config.seed), (VOCAB, self.config.seed))
    damaged = [line for line in logs.output if 'is damaged' in line]
    self.assertLen(damaged, 1)
    self.assertNotIn('\n', damaged[0])
    self.assertRegex(damaged[0], f'Checkpoint .*/checkpoints/20 is '
                     f'damaged: .*{named}.* Restored step 10 instead')
    self.assertTrue(os.path.isdir(self._step_dir(20)))  # readers move nothing

  @parameterized.parameters(*DAMAGES)
  def test_training_sets_the_damaged_step_aside_and_saves_it_again(
      self, kind, named):
    _damage(self._step_dir(20), kind)
    with self.assertLogs(level='WARNING'):
      restored = self.checkpointer.restore_latest(_state(0))
    self.assertEqual(restored.step, 10)
    np.testing.assert_array_equal(restored.state['params']['w'], [10, 10])
    self.assertEqual(restored.meta, VOCAB)
    self.assertLen(restored.damaged, 1)
    self.assertRegex(restored.damaged[0],
                     f'{named}.* Set aside as .*/checkpoints/20.damaged')
    self.assertEqual(self.checkpointer.latest_step(), 10)
    # The resumed run reaches step 20 again and can save it.
    self.checkpointer.save(20, _state(21), self.config, VOCAB)
    self.checkpointer.wait()
    again = self.checkpointer.restore_latest(_state(0))
    self.assertEqual((again.step, again.damaged), (20, []))
    np.testing.assert_array_equal(again.state['params']['w'], [21, 21])
    self.assertTrue(os.path.isdir(self._step_dir(20) + '.damaged'))

  def test_no_intact_step_is_one_line_saying_what_to_do(self):
    for step in (10, 20):
      _damage(self._step_dir(step), 'truncated data file')
    with self.assertLogs(level='WARNING'):
      with self.assertRaises(checkpointing.NoIntactCheckpointError) as e:
        checkpointing.restore_trained(self.workdir)
    self.assertRegex(str(e.exception), r'^No intact checkpoint in .*'
                     r'checkpoints: all 2 step\(s\) are damaged \(20, 10;.*'
                     r': train again with `python -m capjax.main')
    self.assertNotIn('\n', str(e.exception))
    with self.assertLogs(level='WARNING'):
      with self.assertRaisesRegex(checkpointing.NoIntactCheckpointError,
                                  'rerun to start from step 0'):
        self.checkpointer.restore_latest(_state(0))

  def test_another_model_is_still_a_mismatch_not_damage(self):
    other = {'step': jnp.asarray(0), 'params': {'w': jnp.zeros((3,))}}
    with self.assertRaisesRegex(checkpointing.CheckpointMismatchError,
                                'checkpoints/20 holds another model'):
      self.checkpointer.restore_latest(other)
    self.assertEqual(self.checkpointer.latest_step(), 20)  # nothing moved

  def test_an_empty_workdir_has_nothing_to_restore(self):
    fresh = checkpointing.Checkpointer(
        os.path.join(self.workdir, 'fresh'), keep=1)
    self.addCleanup(fresh.close)
    self.assertIsNone(fresh.restore_latest(_state(0)))


if __name__ == '__main__':
  absltest.main()
