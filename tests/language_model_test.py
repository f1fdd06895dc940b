"""The image-free story model (task language_model) in the one train loop."""

import os
import shutil
import tempfile

from absl.testing import absltest
import jax
import numpy as np
import orbax.checkpoint as ocp

from capjax import checkpointing
from capjax import tasks
from capjax import train
from configs.story import flickr8k as story_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config():
  config = story_config.get_config('tiny')
  config.dataset.manual_dir = os.path.join(
      REPO, '..', 'shared', 'data', 'flickr8k_text')
  config.eval.splits = ('test',)
  config.optimizer.learning_rate = 1e-2
  config.train.num_steps = 24
  config.train.checkpoint_every = 8
  # The best checkpoint by held-out bits per character (lower is better).
  config.train.best_metric = 'bits_per_char'
  config.eval.validation_split = 'heldout'
  return config


class LanguageModelTaskTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix='capjax-lm-test-')
    cls.config = _config()
    cls.whole = os.path.join(cls.root, 'whole')
    cls.results = train.train_and_evaluate(cls.config, cls.whole)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def test_the_loop_trains_a_task_without_images(self):
    self.assertIs(tasks.get(self.config), tasks.language_model)
    batches, _ = tasks.get(self.config).open_data(self.config)
    self.assertEqual(set(next(iter(batches(0)))), {'tokens'})
    metrics = self.results['test']
    self.assertEqual(set(metrics),
                     {'bits_per_char', 'unigram_bits_per_char'})
    chars = len(tasks.language_model.vocab_of(
        checkpointing.restore_trained(self.whole)[1]))
    # An untrained model is about a uniform guess, log2(characters) bits;
    # 24 steps of a tiny model already beat it clearly.
    self.assertLess(metrics['bits_per_char'], 0.8 * np.log2(chars))
    self.assertTrue(os.path.exists(
        os.path.join(self.whole, 'best', '24')))

  def test_a_run_cut_after_a_checkpoint_resumes_to_the_same_result(self):
    cut = os.path.join(self.root, 'cut')
    shutil.copytree(self.whole, cut)
    # What a run killed after saving step 16 leaves behind.
    shutil.rmtree(os.path.join(cut, 'checkpoints', '24'))
    shutil.rmtree(os.path.join(cut, 'best'))
    shutil.rmtree(os.path.join(cut, 'eval'))
    resumed = train.train_and_evaluate(self.config, cut)
    self.assertEqual(resumed, self.results)
    whole = checkpointing.restore_trained(self.whole)[2]
    again = checkpointing.restore_trained(cut)[2]
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(again)):
      np.testing.assert_array_equal(a, b)

  def test_a_carried_state_is_checkpointed_and_resumed_exactly(self):
    config = _config()
    config.train.carry_state = True
    config.train.num_steps = 8
    config.train.checkpoint_every = 4
    config.train.best_metric = ''
    carried = os.path.join(self.root, 'carried')
    results = train.train_and_evaluate(config, carried)
    state = checkpointing.restore_trained(carried)
    saved = checkpointing.restore_intact(ocp.CheckpointManager(
        os.path.join(carried, 'checkpoints'))).state
    self.assertGreater(np.abs(jax.tree.leaves(saved['carry'])[0]).max(), 0)
    cut = os.path.join(self.root, 'carried-cut')
    shutil.copytree(carried, cut)
    shutil.rmtree(os.path.join(cut, 'checkpoints', '8'))
    shutil.rmtree(os.path.join(cut, 'eval'))
    # Resumed at step 4 with the state the streams had there: if the state
    # were not saved, steps 5-8 would start from zeros and differ.
    self.assertEqual(train.train_and_evaluate(config, cut), results)
    for a, b in zip(jax.tree.leaves(state[2]),
                    jax.tree.leaves(checkpointing.restore_trained(cut)[2])):
      np.testing.assert_array_equal(a, b)
    fresh = train.setup(config, state[1], {'tokens': np.zeros(
        (config.train.batch_size, config.dataset.window + 1), np.int32)})
    self.assertEqual(jax.tree.leaves(fresh.state.carry)[0].shape,
                     (config.train.batch_size, config.model.hidden_dim))

  def test_a_finished_run_started_again_changes_nothing(self):
    again = os.path.join(self.root, 'again')
    shutil.copytree(self.whole, again)
    before = sorted(os.listdir(os.path.join(again, 'checkpoints')))
    self.assertEqual(train.train_and_evaluate(self.config, again),
                     self.results)
    self.assertEqual(sorted(os.listdir(os.path.join(again, 'checkpoints'))),
                     before)


if __name__ == '__main__':
  absltest.main()
