"""The image encoders: shapes, errors, and a bounded global feature."""

from absl.testing import absltest
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from capjax.models import encoders
from capjax.models.encoders import small_cnn


def _images(batch=2, size=16, seed=0):
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.integers(0, 256, (batch, size, size, 3), np.uint8))


class SmallCNNTest(absltest.TestCase):

  def test_grid_and_global_shapes(self):
    encoder = small_cnn.SmallCNN(channels=(4, 8), strides=(2, 2),
                                 global_dim=6)
    images = _images()
    params = encoder.init(jax.random.key(0), images)
    global_feature, grid = encoder.apply(params, images)
    self.assertEqual(global_feature.shape, (2, 6))
    self.assertEqual(grid.shape, (2, 16, 8 + 2))  # 4x4 cells, x/y channels

  def test_global_feature_does_not_grow_with_its_weights(self):
    # The global vector is layer-normalised before its ReLU, so training
    # cannot blow it up (it once reached values in the hundreds and
    # saturated the LSTM that reads it).
    encoder = small_cnn.SmallCNN(channels=(4, 8), strides=(2, 2),
                                 global_dim=6)
    images = _images()
    params = encoder.init(jax.random.key(0), images)
    grown = jax.tree.map(lambda x: x, params)
    grown['global'] = jax.tree.map(lambda x: 100.0 * x, params['global'])
    base, _ = encoder.apply(params, images)
    scaled, _ = encoder.apply(grown, images)
    np.testing.assert_allclose(scaled, base, atol=1e-4)
    self.assertLess(float(jnp.max(jnp.abs(scaled))), 10.0)

  def test_mismatched_channels_and_strides_name_the_keys(self):
    with self.assertRaisesRegex(ValueError, 'model.encoder.channels'):
      small_cnn.SmallCNN(channels=(4, 8), strides=(2,))


class CreateTest(absltest.TestCase):

  def test_unknown_encoder_names_the_config_key(self):
    config = ml_collections.ConfigDict({'name': 'resnet9000'})
    with self.assertRaisesRegex(ValueError, 'model.encoder.name'):
      encoders.create(config)

  def test_fields_of_other_encoders_are_ignored(self):
    config = ml_collections.ConfigDict(
        {'name': 'small_cnn', 'global_dim': 5, 'not_a_small_cnn_field': 1})
    encoder = encoders.create(config)
    self.assertEqual(encoder.global_dim, 5)


if __name__ == '__main__':
  absltest.main()
