"""The ImageNet encoders: sizes, bfloat16, checkpoints, preprocessing errors.

Their values are checked against Keras and torchvision in
converters_test.py; here the structure of every architecture (ResNet-101 and
VGG-19 included) is checked from shapes alone, without running them.
"""

import json
import os
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import jax
import numpy as np

from capjax.benchmarks import extract as extract_benchmark
from capjax.benchmarks import flops
from capjax.models import encoders
from capjax.models.encoders import checkpoint


def _shapes(arch, size, **fields):
  encoder = encoders.ENCODERS[arch](**fields)
  images = jax.ShapeDtypeStruct((2, size, size, 3), np.uint8)

  def init_with_output(rng, images):  # one trace instead of init + apply
    return encoder.module().init_with_output(
        rng, encoder._inputs(images))  # pylint: disable=protected-access

  (pooled, grid), variables = jax.eval_shape(
      init_with_output, jax.random.key(0), images)
  params = variables['params']
  grid = (grid.shape[0], grid.shape[1] * grid.shape[2], grid.shape[3])
  count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
  return count, pooled.shape, grid


class StructureTest(parameterized.TestCase):

  @parameterized.parameters(
      # Parameters without the ImageNet classifier (torchvision's counts
      # minus the last layer; batch norm as scale and bias).
      ('vgg16', 224, 134_260_544, (2, 4096), (2, 196, 512)),
      ('vgg19', 224, 139_570_240, (2, 4096), (2, 196, 512)),
      ('resnet50', 224, 23_508_032, (2, 2048), (2, 49, 2048)),
      ('resnet101', 224, 42_500_160, (2, 2048), (2, 49, 2048)),
      ('inception_v3', 299, None, (2, 2048), (2, 64, 2048)),
  )
  def test_sizes_at_the_papers_input(self, arch, size, count, pooled, grid):
    got_count, got_pooled, got_grid = _shapes(arch, size)
    if count is not None:
      self.assertEqual(got_count, count)
    self.assertEqual(got_pooled, pooled)
    self.assertEqual(got_grid, grid)

  def test_torch_vgg_pools_to_7x7_so_fc6_does_not_depend_on_the_size(self):
    small, _, _ = _shapes('vgg16', 64, pool_to=7, preprocessing='torch')
    self.assertEqual(small, 134_260_544)

  def test_vgg16_flops_are_the_known_15_5_billion_multiply_adds(self):
    encoder = encoders.ENCODERS['vgg16']()
    images = jax.ShapeDtypeStruct((1, 224, 224, 3), np.uint8)
    params = jax.eval_shape(encoder.init, jax.random.key(0), images)
    multiply_adds = flops.matmul_flops(encoder.apply, params, images) / 2
    # 13 convs (15.35e9) + fc6 and fc7 (0.12e9); no classifier.
    self.assertAlmostEqual(multiply_adds / 1e9, 15.47, delta=0.01)

  def test_bad_fields_are_one_line_errors(self):
    with self.assertRaisesRegex(ValueError, 'preprocessing'):
      encoders.ENCODERS['resnet50'](preprocessing='tf')
    with self.assertRaisesRegex(ValueError, 'dtype'):
      encoders.ENCODERS['vgg16'](dtype='float16')
    with self.assertRaisesRegex(ValueError, 'stride_on'):
      encoders.ENCODERS['resnet50'](stride_on='7x7')
    encoder = encoders.ENCODERS['resnet50']()
    with self.assertRaisesRegex(ValueError, r'\[batch, height, width, 3\]'):
      encoder.apply({}, np.zeros((2, 32, 32), np.uint8))


class Bfloat16AndCheckpointTest(absltest.TestCase):

  def test_bfloat16_is_close_to_float32_and_returns_float32(self):
    images = np.random.default_rng(0).integers(
        0, 256, (2, 32, 32, 3)).astype(np.uint8)
    f32 = encoders.ENCODERS['vgg16']()
    params = extract_benchmark.random_params(f32, images)
    bf16 = encoders.ENCODERS['vgg16'](dtype='bfloat16')
    want = jax.jit(f32.apply)(params, images)
    got = jax.jit(bf16.apply)(params, images)
    for a, b in zip(got, want):
      self.assertEqual(a.dtype, np.float32)
      error = np.abs(np.asarray(a) - np.asarray(b)).max()
      scale = np.abs(np.asarray(b)).max()
      self.assertLess(error / scale, 0.05)  # bfloat16 keeps 8 bits
      self.assertGreater(error, 0.0)  # and it did run in bfloat16

  def test_save_load_round_trip_and_errors(self):
    with tempfile.TemporaryDirectory() as root:
      encoder = encoders.ENCODERS['vgg16'](preprocessing='torch', pool_to=7)
      params = {'a': {'kernel': np.arange(6, dtype=np.float32).reshape(2, 3)}}
      out = os.path.join(root, 'w')
      checkpoint.save(out, 'vgg16', {'preprocessing': 'torch', 'pool_to': 7},
                      params, source='torch', image_size=224)
      loaded, got, info = checkpoint.load(out, dtype='bfloat16')
      self.assertEqual(loaded, encoders.ENCODERS['vgg16'](
          preprocessing='torch', pool_to=7, dtype='bfloat16'))
      self.assertEqual(encoder.pool_to, loaded.pool_to)
      np.testing.assert_array_equal(got['a']['kernel'], params['a']['kernel'])
      self.assertEqual(info['image_size'], 224)
      with self.assertRaisesRegex(ValueError, 'convert_weights'):
        checkpoint.load(os.path.join(root, 'missing'))
      with open(os.path.join(out, checkpoint.JSON_NAME), 'w') as f:
        json.dump({'format': 'capjax-encoder', 'arch': 'googlenet'}, f)
      with self.assertRaisesRegex(ValueError, 'googlenet'):
        checkpoint.load(out)
      with open(os.path.join(out, checkpoint.JSON_NAME), 'w') as f:
        json.dump({'format': 'capjax-encoder', 'arch': 'alexnet'}, f)
      with self.assertRaisesRegex(ValueError, 'no encoder fields'):
        checkpoint.load(out)


if __name__ == '__main__':
  absltest.main()
