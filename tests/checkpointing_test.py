"""Tests of checkpoints: keep K, keep the best, carry config and vocabulary."""

import os
import shutil
import tempfile

from absl.testing import absltest
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


if __name__ == '__main__':
  absltest.main()
