"""The multi-label tag task: targets, additive sums, a loss that falls."""

import importlib.util
import os
import tempfile

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np
import optax

from capjax.evaluators import tags as tags_evaluator
from capjax.models import multilabel
from capjax.tasks import multilabel as task

CONFIG = os.path.join(os.path.dirname(__file__), '..', 'configs', 'hashtags',
                      'shapes.py')


def _config(arg):
  spec = importlib.util.spec_from_file_location('hashtag_shapes', CONFIG)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


class MultilabelTaskTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._tmp = tempfile.TemporaryDirectory()
    cls.config = _config('tiny,model=multilabel')
    cls.config.dataset.data_dir = cls._tmp.name
    batches, cls.meta = task.open_data(cls.config)
    cls.batches = staticmethod(batches)
    cls.model = task.create_model(cls.config, cls.meta)
    cls.batch = next(cls.batches(0))
    cls.params = jax.jit(lambda r, b: task.init_params(cls.model, r, b))(
        jax.random.key(0), cls.batch)

  @classmethod
  def tearDownClass(cls):
    cls._tmp.cleanup()
    super().tearDownClass()

  def test_targets_are_the_tags_of_the_sequence(self):
    tokens = jnp.asarray([[1, 5, 7, 2, 0], [1, 4, 2, 0, 0]])
    targets = multilabel.targets_from_tokens(tokens, 9)
    np.testing.assert_array_equal(
        targets, [[0, 0, 0, 0, 0, 1, 0, 1, 0], [0, 0, 0, 0, 1, 0, 0, 0, 0]])

  def test_totals_are_sums_over_batch_halves(self):
    totals = jax.jit(lambda p, b: task.totals(self.model, p, b, train=True))
    whole = totals(self.params, self.batch)
    half = {k: v[:8] for k, v in self.batch.items()}
    rest = {k: v[8:] for k, v in self.batch.items()}
    parts = [totals(self.params, b) for b in (half, rest)]
    for key in whole:
      np.testing.assert_allclose(whole[key], parts[0][key] + parts[1][key],
                                 rtol=1e-5)
    # Local sums over the global count: the halves' losses add to the whole.
    halves = sum(task.loss(p, whole) for p in parts)
    np.testing.assert_allclose(halves, task.loss(whole, whole), rtol=1e-5)

  def test_loss_falls_with_a_few_adam_steps(self):
    tx = optax.adam(2e-2)

    @jax.jit
    def step(params, opt_state, batch):
      def loss_fn(p):
        sums = task.totals(self.model, p, batch, train=True)
        return task.loss(sums, sums)
      value, grads = jax.value_and_grad(loss_fn)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), opt_state, value

    params, opt_state = self.params, tx.init(self.params)
    losses = []
    for _, batch in zip(range(30), self.batches(0)):
      params, opt_state, value = step(params, opt_state, batch)
      losses.append(float(value))
    self.assertLess(np.mean(losses[-5:]), 0.9 * np.mean(losses[:3]))
    summary = task.summarize(jax.jit(
        lambda p, b: task.totals(self.model, p, b, train=False))(
            params, self.batch))
    self.assertIn('loss', summary)
    ids, probs = self.model.top_tags(params, self.batch['image'], 3)
    self.assertEqual(ids.shape, (16, 3))
    self.assertTrue(np.all(np.asarray(ids) >= multilabel.NUM_SPECIAL))
    self.assertTrue(np.all(np.diff(np.asarray(probs), axis=1) <= 0))
    # The evaluator's table on the test split: the frequent true tags come
    # first (a random ranking of ~23 tags scores P@3 ~ 0.2).
    evaluator = tags_evaluator.Evaluator(
        self.config, task, self.model, self.meta, 'test')
    scores = evaluator.run(params)
    self.assertEqual(scores['num_images'], 40)
    self.assertGreater(scores['P@3'], 0.4)
    self.assertBetween(scores['Bleu_1'], 0.0, 1.0)


if __name__ == '__main__':
  absltest.main()
