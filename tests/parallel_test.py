"""Tests of device placement: mesh, batch sharding, the pmap helpers."""

from absl.testing import absltest
import jax
import numpy as np

from capjax import parallel


class ParallelTest(absltest.TestCase):

  def test_mesh_of_all_or_some_devices(self):
    self.assertEqual(parallel.make_mesh().size, jax.device_count())
    self.assertEqual(parallel.make_mesh(2).size, 2)
    with self.assertRaisesRegex(ValueError, 'num_devices=99'):
      parallel.make_mesh(99)

  def test_batch_is_split_along_its_leading_axis(self):
    mesh = parallel.make_mesh(8)
    batch = {'x': np.arange(16 * 3).reshape(16, 3).astype(np.float32)}
    placed = parallel.shard_batch(batch, mesh)['x']
    self.assertEqual(placed.shape, (16, 3))
    shards = sorted(placed.addressable_shards, key=lambda s: s.index[0].start)
    self.assertLen(shards, 8)
    for i, shard in enumerate(shards):
      np.testing.assert_array_equal(shard.data, batch['x'][2 * i:2 * i + 2])
    np.testing.assert_array_equal(parallel.to_host(placed), batch['x'])

  def test_replicated_tree_is_whole_on_every_device(self):
    mesh = parallel.make_mesh(4)
    placed = parallel.replicate({'w': np.ones(3)}, mesh)['w']
    self.assertLen(placed.addressable_shards, 4)
    for shard in placed.addressable_shards:
      np.testing.assert_array_equal(shard.data, np.ones(3))

  def test_uneven_batch_is_a_clear_error(self):
    with self.assertRaisesRegex(ValueError,
                                'config.train.batch_size=12 must be divisible'):
      parallel.check_batch_size(12, 8, 'config.train.batch_size')

  def test_pmap_split_and_replicate(self):
    n = jax.local_device_count()
    split = parallel.pmap_split({'x': np.zeros((2 * n, 5))})
    self.assertEqual(split['x'].shape, (n, 2, 5))
    replicated = parallel.pmap_replicate({'w': np.arange(3.0)})
    self.assertEqual(replicated['w'].shape, (n, 3))
    np.testing.assert_array_equal(
        parallel.pmap_unreplicate(replicated)['w'], np.arange(3.0))


if __name__ == '__main__':
  absltest.main()
