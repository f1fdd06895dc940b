"""Data-parallel loops stay split: no device runs another device's examples.

Inside a jitted step with the batch sharded over a mesh, a `lax.scan` or
`while_loop` whose carry starts from constants, a time-major reshape and
XLA's `top_k` each made the partitioner gather the whole batch onto every
device. These tests read the compiled programs on the 8 test devices and
compare them with one device.
"""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from capjax import decoding
from capjax import parallel
from capjax import stepping
from capjax.benchmarks import bench_model
from capjax.benchmarks import sharded_step
from capjax.decoding import top_k as decoding_top_k

SIZE = dict(batch=16, max_len=6, vocab=30, hidden=8, embed=8, feature_dim=4)


def _jit_mode(num_devices: int) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(
      {'parallel': {'mode': 'jit', 'num_devices': num_devices}})


class ShardedTrainStepTest(parameterized.TestCase):

  @parameterized.parameters(
      ('lstm', 'float32'), ('gru', 'float32'), ('lstm', 'bfloat16'),
      ('merge', 'bfloat16'), ('mrnn', 'float32'))
  def test_no_device_gathers_the_batch_and_results_match(self, decoder, dtype):
    size = bench_model.ModelSize(decoder=decoder, dtype=dtype, **SIZE)
    setup = bench_model.train_setup(size)
    host_state = jax.device_get(setup.state)  # the step donates its state
    out = {}
    for devices in (1, 8):
      stepper = stepping.Stepper(_jit_mode(devices), setup.step_fn,
                                 parallel.make_mesh(devices))
      state = stepper.place_state(host_state)
      batch = stepper.place_batch(jax.device_get(setup.batch))
      if devices == 8:
        program = stepper.lower(state, batch, setup.rng).compile().as_text()
        # Gradients are summed (all-reduce); activations are never gathered.
        self.assertNotIn('all-gather(', program)
        self.assertNotIn('all-to-all(', program)
        self.assertIn('all-reduce(', program)
      new_state, metrics = stepper(state, batch, setup.rng)
      out[devices] = (float(metrics['loss']),
                      jax.device_get(new_state.params))
    tol = 1e-5 if dtype == 'float32' else 2e-2
    np.testing.assert_allclose(out[8][0], out[1][0], rtol=tol)
    for got, want in zip(jax.tree.leaves(out[8][1]),
                         jax.tree.leaves(out[1][1])):
      np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


class ShardedBeamSearchTest(absltest.TestCase):

  def test_each_device_ranks_its_own_beams(self):
    size = bench_model.ModelSize(**SIZE)
    model, params = bench_model.init_params(size)
    images = jnp.asarray(bench_model.features(size))

    def beams(params, images):
      step_fn, carry = model.decoder_fns(params, images)
      return decoding.decode(step_fn, carry, method='beam', beam_size=3,
                             max_len=6)

    want = jax.jit(beams)(params, images)
    mesh = parallel.make_mesh(8)
    sharded = jax.jit(beams,
                      in_shardings=(parallel.replicated_sharding(mesh),
                                    parallel.data_sharding(mesh)))
    with jax.set_mesh(mesh):
      program = sharded.lower(params, images).compile().as_text()
      got = sharded(params, images)
    self.assertNotIn('all-gather(', program)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5)


class DeviceRowsTest(absltest.TestCase):

  def test_regrouping_round_trips_and_top_k_is_per_row(self):
    mesh = parallel.make_mesh(8)
    x = jnp.arange(5 * 16 * 3, dtype=jnp.float32).reshape(5, 16, 3)

    def regroup(x):
      grouped, devices = parallel.device_rows(x, 1)
      return grouped, parallel.undo_device_rows(grouped, 1, devices)

    plain_grouped, plain_back = jax.jit(regroup)(x)
    self.assertEqual(plain_grouped.shape, x.shape)  # no mesh: unchanged
    with jax.set_mesh(mesh):
      grouped, back = jax.jit(regroup)(x)
      values, index = jax.jit(
          lambda v: decoding_top_k.batch_top_k(v, 2))(x[0])
    self.assertEqual(grouped.shape, (8, 5, 2, 3))
    # Device d's rows: examples 2d and 2d + 1 at every time step.
    np.testing.assert_array_equal(grouped[3], x[:, 6:8])
    np.testing.assert_array_equal(back, x)
    np.testing.assert_array_equal(plain_back, x)
    want_values, want_index = jax.lax.top_k(x[0], 2)
    np.testing.assert_array_equal(values, want_values)
    np.testing.assert_array_equal(index, want_index)


class ShardedStepBenchmarkTest(absltest.TestCase):

  def test_records_count_the_gathers_each_way(self):
    records = sharded_step.run(dict(SIZE, repeats=1, warmup=0))
    by_name = {(r['what'], r['side']): r for r in records}
    self.assertLen(by_name, 4)
    for what in ('train_step', 'beam'):
      self.assertGreater(by_name[what, 'gathered']['all_gathers'], 0)
      self.assertEqual(by_name[what, 'split']['all_gathers'], 0)
      self.assertEqual(by_name[what, 'split']['devices'], 8)
      self.assertGreater(by_name[what, 'split']['speedup'], 0)


if __name__ == '__main__':
  absltest.main()
