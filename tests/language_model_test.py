"""The image-free language-model task trained by the one train loop."""

import os
import shutil
import tempfile

from absl.testing import absltest
import jax
import numpy as np

from capjax import checkpointing
from capjax import tasks
from capjax import train
from capjax.models import language_model
from configs.language_model import shapes as lm_config


def _config(data_dir: str):
  config = lm_config.get_config('tiny')
  config.dataset.data_dir = data_dir
  config.eval.splits = ('test',)
  config.optimizer.learning_rate = 1e-2
  config.train.num_steps = 24
  config.train.checkpoint_every = 8
  return config


class LanguageModelTaskTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix='capjax-lm-test-')
    cls.config = _config(os.path.join(cls.root, 'data'))
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
    self.assertEqual(set(metrics), {'perplexity'})
    vocab_size = len(tasks.captioning.vocab_of(
        checkpointing.restore_trained(self.whole)[1]))
    # An untrained model is a uniform guess (perplexity = vocabulary size);
    # 24 steps of a tiny model already beat it clearly.
    self.assertLess(metrics['perplexity'], 0.7 * vocab_size)
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

  def test_a_finished_run_started_again_changes_nothing(self):
    again = os.path.join(self.root, 'again')
    shutil.copytree(self.whole, again)
    before = sorted(os.listdir(os.path.join(again, 'checkpoints')))
    self.assertEqual(train.train_and_evaluate(self.config, again),
                     self.results)
    self.assertEqual(sorted(os.listdir(os.path.join(again, 'checkpoints'))),
                     before)

  def test_stepping_the_model_reproduces_the_scanned_logits(self):
    model = language_model.RecurrentLM(vocab_size=9, embed_dim=4,
                                       hidden_dim=5, num_layers=2)
    tokens = jax.random.randint(jax.random.key(0), (3, 6), 1, 9)
    params = model.init(jax.random.key(1), tokens)
    scanned = model.apply(params, tokens)
    carry = model.apply(params, (3,), method='init_carry')
    for t in range(tokens.shape[1]):
      logits, carry = model.apply(params, carry, tokens[:, t], method='step')
      np.testing.assert_allclose(logits, scanned[:, t], rtol=1e-5, atol=1e-5)


if __name__ == '__main__':
  absltest.main()
