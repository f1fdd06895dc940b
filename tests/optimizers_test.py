"""Tests of config -> optax optimizer and schedules."""

from absl.testing import absltest
from absl.testing import parameterized
import jax.numpy as jnp
import numpy as np

from capjax import config_base
from capjax import optimizers


def _config(**overrides):
  config = config_base.base_config().optimizer
  config.update(overrides)
  return config


class ScheduleTest(parameterized.TestCase):

  def test_warmup_cosine_rises_then_decays_to_the_end_factor(self):
    schedule = optimizers.schedule(
        _config(learning_rate=1.0, warmup_steps=10, end_factor=0.1), 110)
    self.assertAlmostEqual(float(schedule(0)), 0.0)
    self.assertAlmostEqual(float(schedule(5)), 0.5, places=5)
    self.assertAlmostEqual(float(schedule(10)), 1.0, places=5)
    self.assertAlmostEqual(float(schedule(60)), 0.55, places=5)
    self.assertAlmostEqual(float(schedule(110)), 0.1, places=5)

  def test_constant_with_warmup(self):
    schedule = optimizers.schedule(
        _config(schedule='constant', learning_rate=2.0, warmup_steps=4), 100)
    np.testing.assert_allclose(
        [float(schedule(s)) for s in (0, 2, 4, 50)], [0.0, 1.0, 2.0, 2.0])

  def test_linear_decays_to_the_end_factor(self):
    schedule = optimizers.schedule(
        _config(schedule='linear', learning_rate=1.0, warmup_steps=0,
                end_factor=0.0), 10)
    self.assertAlmostEqual(float(schedule(5)), 0.5, places=5)

  @parameterized.parameters('adam', 'adamw', 'sgd', 'rmsprop')
  def test_every_optimizer_steps_downhill(self, name):
    tx = optimizers.create(_config(name=name, learning_rate=0.1,
                                   warmup_steps=0, momentum=0.5), 10)
    params = {'w': jnp.array([1.0, -2.0])}
    state = tx.init(params)
    grads = {'w': 2 * params['w']}  # gradient of |w|^2
    updates, _ = tx.update(grads, state, params)
    self.assertLess(float(jnp.sum((params['w'] + updates['w']) ** 2)),
                    float(jnp.sum(params['w'] ** 2)))

  def test_clipping_bounds_the_update_of_sgd(self):
    tx = optimizers.create(_config(name='sgd', learning_rate=1.0,
                                   warmup_steps=0, grad_clip_norm=1.0), 10)
    params = {'w': jnp.zeros(2)}
    updates, _ = tx.update({'w': jnp.array([30.0, 40.0])}, tx.init(params),
                           params)
    np.testing.assert_allclose(updates['w'], [-0.6, -0.8], rtol=1e-6)

  def test_unknown_names_are_errors_naming_the_key(self):
    with self.assertRaisesRegex(ValueError, 'optimizer.name'):
      optimizers.create(_config(name='lamb'), 10)
    with self.assertRaisesRegex(ValueError, 'optimizer.schedule'):
      optimizers.create(_config(schedule='exp'), 10)


if __name__ == '__main__':
  absltest.main()
