"""The benchmark entry point, each benchmark's records, and the timer."""

import gc
import json
import math
import os
import re
import subprocess
import sys
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from capjax.benchmarks import bench_model
from capjax.benchmarks import checks
from capjax.benchmarks import decode
from capjax.benchmarks import step_records
from capjax.benchmarks import timing
from capjax.benchmarks import torch_reference
from capjax.benchmarks import train_step

ROOT = os.path.join(os.path.dirname(__file__), '..')
SHARED = os.path.join(ROOT, '..', 'shared', 'data')
if not os.path.isdir(SHARED):
  SHARED = '/work/shared/data'
FLICKR_1K = os.path.join(SHARED, 'flickr8k_1k')

# A tiny benchmark model and quick timing: the tests check records, not speed.
MODEL = dict(batch=4, max_len=6, vocab=50, hidden=16, embed=8)
MODEL_FLAGS = [f'--{k}={v}' for k, v in MODEL.items()]
QUICK_FLAGS = ['--repeats=2', '--warmup=1', '--matmul_size=128']
# Keys every record carries: the machine's figures (benchmark.machine_record).
MACHINE_KEYS = ('matmul_gflop_per_s', 'matmul_size', 'date', 'jax_version',
                'backend', 'device', 'cpu_count')
# The benchmark model's configuration (ModelSize.as_record).
CONFIG_KEYS = ('decoder', 'cell', 'batch', 'max_len', 'vocab', 'hidden',
               'embed', 'feature_dim', 'grid_cells')
# Figures of issue 5 that must be positive numbers, by benchmark.
TRAIN_FIGURES = ('tokens_per_s', 'captions_per_s', 'step_ms', 'compile_s',
                 'gflop_per_step', 'achieved_gflop_per_s',
                 'matmul_gflop_per_s', 'share_of_matmul')
DECODE_FIGURES = ('tokens_per_s', 'captions_per_s', 'batch_ms', 'compile_s',
                  'gflop_per_batch', 'achieved_gflop_per_s',
                  'matmul_gflop_per_s', 'share_of_matmul')
COMPILE_FIGURES = ('trace_s', 'compile_s', 'compile_s_vs_first',
                   'matmul_gflop_per_s')


class TimingTest(absltest.TestCase):

  def test_counts_and_orders_repetitions(self):
    calls = []
    result, value = timing.time_fn(lambda: calls.append(1) or jnp.ones(3),
                                   repeats=3, warmup=2)
    self.assertLen(calls, 5)  # 2 warm-up + 3 timed
    self.assertEqual(result.repeats, 3)
    self.assertLessEqual(result.min_seconds, result.median_seconds)
    self.assertLessEqual(result.median_seconds, result.max_seconds)
    self.assertEqual(value.tolist(), [1.0, 1.0, 1.0])

  def test_between_runs_after_each_timed_call_only(self):
    order = []
    timing.time_fn(lambda: order.append('call'), repeats=2, warmup=1,
                   between=lambda: order.append('between'))
    self.assertEqual(order, ['call', 'call', 'between', 'call', 'between'])

  def test_rejects_zero_repeats(self):
    with self.assertRaises(ValueError):
      timing.time_fn(lambda: None, repeats=0)

  def test_garbage_collector_paused_while_timing_only(self):
    seen = []
    record = lambda: seen.append(gc.isenabled())
    timing.time_fn(record, repeats=2, warmup=1)
    timing.time_alternating({'a': record, 'b': record}, repeats=2)
    self.assertEqual(set(seen), {False})
    self.assertTrue(gc.isenabled())
    with self.assertRaises(ZeroDivisionError):
      timing.time_fn(lambda: 1 / 0)
    self.assertTrue(gc.isenabled())  # restored after a failing call too


def run_cli(*args: str) -> subprocess.CompletedProcess:
  """Runs `python -m capjax.benchmark ARGS` from the repository root."""
  return subprocess.run([sys.executable, '-m', 'capjax.benchmark', *args],
                        cwd=ROOT, capture_output=True, text=True, timeout=600)


class StepRecordsTest(absltest.TestCase):

  def test_donated_steps_thread_their_state_and_fill_the_records(self):
    def step(state, batch, rng):
      del rng
      new = state + batch['x'] @ batch['x']
      return new, {'loss': new.sum()}

    batch = {'x': jnp.eye(4)}
    contenders, records = {}, {}
    for name, start in (('a', 0.0), ('b', 10.0)):
      contenders[name], records[name] = step_records.compile_step(
          step, jnp.full((4, 4), start), batch, jax.random.key(0))
      self.assertAlmostEqual(records[name]['gflop_per_step'], 2 * 64 / 1e9)
    out = step_records.time_steps(contenders, records,
                                  {'repeats': 2, 'warmup': 1}, 4)
    self.assertEqual([r is records[n] for r, n in zip(out, 'ab')],
                     [True, True])
    # Three steps each (warm-up and two timed), the state threaded through.
    self.assertEqual(out[0]['loss'], 3 * 4)
    self.assertEqual(out[1]['loss'], 10 * 16 + 3 * 4)
    for r in out:
      self.assertGreater(r['step_ms'], 0)
      self.assertEqual(r['repeats'], 2)


class _CliTestCase(parameterized.TestCase):
  """Runs the CLI with --json and checks the records' shared properties."""

  def json_records(self, *args: str) -> list[dict]:
    done = run_cli(*args, '--json')
    self.assertEqual(done.returncode, 0, msg=done.stderr[-3000:])
    lines = done.stdout.splitlines()
    self.assertNotEmpty(lines)
    records = []
    for line in lines:
      record = json.loads(line)  # every stdout line is one JSON object
      self.assertIsInstance(record, dict)
      for key in MACHINE_KEYS:
        self.assertIn(key, record)
      for key, value in record.items():
        if isinstance(value, float):
          self.assertTrue(math.isfinite(value), msg=f'{key}={value}')
      records.append(record)
    return records

  def assert_figures(self, record: dict, keys: tuple[str, ...]):
    for key in keys:
      self.assertIn(key, record)
      self.assertGreater(record[key], 0, msg=key)

  def assert_model_config(self, record: dict, **expected):
    for key in CONFIG_KEYS:
      self.assertIn(key, record)
    for key, value in dict(MODEL, decoder='show_tell', cell='lstm',
                           feature_dim=bench_model.FEATURE_DIM,
                           **expected).items():
      self.assertEqual(record[key], value, msg=key)

  def assert_share(self, record: dict):
    self.assertAlmostEqual(
        record['share_of_matmul'],
        record['achieved_gflop_per_s'] / record['matmul_gflop_per_s'],
        delta=1e-9 * record['share_of_matmul'])


class TrainStepBenchmarkTest(_CliTestCase):

  def test_json_records_carry_the_train_figures(self):
    records = self.json_records('train_step', *MODEL_FLAGS, *QUICK_FLAGS,
                                '--notorch')
    self.assertLen(records, 1)
    record = records[0]
    self.assertEqual((record['benchmark'], record['impl']),
                     ('train_step', 'capjax'))
    self.assert_model_config(record)
    self.assert_figures(record, TRAIN_FIGURES)
    self.assert_share(record)
    step_s = record['step_ms'] / 1e3
    self.assertAlmostEqual(record['tokens_per_s'] * step_s,
                           MODEL['batch'] * MODEL['max_len'], places=6)
    self.assertAlmostEqual(record['captions_per_s'] * step_s, MODEL['batch'],
                           places=6)
    self.assertAlmostEqual(
        record['achieved_gflop_per_s'] * step_s, record['gflop_per_step'],
        delta=1e-9 * record['gflop_per_step'])
    # The FLOPs are those of this configuration's step (flops_test checks the
    # counter against a hand count).
    size = bench_model.ModelSize(**MODEL)
    self.assertAlmostEqual(
        record['gflop_per_step'],
        train_step.step_flops(bench_model.train_setup(size)) / 1e9,
        delta=1e-12)

  def test_table_output_prints_machine_and_figures(self):
    done = run_cli('train_step', *MODEL_FLAGS, *QUICK_FLAGS, '--notorch')
    self.assertEqual(done.returncode, 0, msg=done.stderr[-3000:])
    lines = done.stdout.splitlines()
    self.assertLen(lines, 4)  # machine line, blank, column names, one row
    self.assertIn('matmul_gflop_per_s=', lines[0])
    self.assertEqual(lines[1], '')
    columns = lines[2].split()
    for key in TRAIN_FIGURES + ('decoder', 'batch'):
      self.assertIn(key, columns)
    row = lines[3].split()
    self.assertLen(row, len(columns))
    self.assertEqual(row[columns.index('decoder')], 'show_tell')
    self.assertEqual(row[columns.index('batch')], str(MODEL['batch']))

  def test_unknown_decoder_is_a_clear_error(self):
    # What `--decoder=nope` hands to every model benchmark's run().
    with self.assertRaisesRegex(ValueError,
                                r"--decoder='nope': use lstm, gru, or one"):
      train_step.model_size(dict(MODEL, decoder='nope'))


  def test_bad_flags_are_caught_before_any_timing(self):
    # The entry point runs these checks first and turns them into usage
    # errors.
    config = dict(MODEL)
    for what in ('train_step', 'decode', 'compile'):
      with self.assertRaisesRegex(ValueError, '--decoder'):
        checks.check_config(what, dict(config, decoder='nope'))
    with self.assertRaisesRegex(ValueError, '--modes'):
      checks.check_config('decode', dict(config, modes=['nope']))
    with self.assertRaisesRegex(ValueError, '--batch'):
      checks.check_config('train_step', dict(config, batch=0))
    checks.check_config('decode', dict(config, modes=['beam']))


class FrozenStepAndWeightsReadTest(absltest.TestCase):

  def test_bad_arch_or_size_is_caught_before_any_timing(self):
    with self.assertRaisesRegex(ValueError, '--arch: one CNN'):
      checks.check_config('frozen_step', dict(archs=['identity']))
    with self.assertRaisesRegex(ValueError, '--arch: one CNN'):
      checks.check_config('frozen_step', dict(archs=['vgg16', 'resnet50']))
    with self.assertRaisesRegex(ValueError, '--image_size must be >= 32'):
      checks.check_config('frozen_step', dict(archs=['vgg16'],
                                              image_size=8))
    with self.assertRaisesRegex(ValueError, '--arch: one of'):
      checks.check_config('weights_read', dict(archs=['small_cnn']))


class DecodeBenchmarkTest(_CliTestCase):

  def test_json_records_carry_mode_beam_and_figures(self):
    records = self.json_records('decode', *MODEL_FLAGS, *QUICK_FLAGS,
                                '--beam=2')
    self.assertEqual([(r['mode'], r['beam']) for r in records],
                     [('greedy', 1), ('beam', 2)])
    for record in records:
      self.assertEqual(record['benchmark'], 'decode')
      self.assert_model_config(record)
      self.assert_figures(record, DECODE_FIGURES)
      self.assert_share(record)
      batch_s = record['batch_ms'] / 1e3
      self.assertAlmostEqual(record['captions_per_s'] * batch_s,
                             MODEL['batch'], places=6)
      self.assertAlmostEqual(record['tokens_per_s'] * batch_s,
                             MODEL['batch'] * MODEL['max_len'], places=6)
    greedy, beam = records
    # A beam of 2 runs every per-step matmul on twice the rows.
    self.assertGreater(beam['gflop_per_batch'], greedy['gflop_per_batch'])

  def test_unknown_mode_is_a_clear_error(self):
    config = dict(MODEL, modes=['greedy', 'nope'], repeats=1, warmup=0)
    with self.assertRaisesRegex(ValueError, r"--modes: unknown \['nope'\]"):
      decode.run(config)


class CompileBenchmarkTest(_CliTestCase):

  def test_json_records_per_function_and_max_len(self):
    records = self.json_records('compile', *MODEL_FLAGS, '--repeats=1',
                                '--matmul_size=128', '--max_lens=4,8',
                                '--beam=2')
    self.assertEqual(
        [(r['function'], r['max_len'], r['beam']) for r in records],
        [('train_step', 4, 0), ('train_step', 8, 0), ('beam_search', 4, 2),
         ('beam_search', 8, 2)])
    for record in records:
      self.assertEqual(record['benchmark'], 'compile')
      self.assert_model_config(record, max_len=record['max_len'])
      self.assert_figures(record, COMPILE_FIGURES)
      self.assertNotIn('share_of_matmul', record)  # no FLOPs, no share
    self.assertEqual(records[0]['compile_s_vs_first'], 1.0)
    self.assertEqual(records[2]['compile_s_vs_first'], 1.0)
    self.assertAlmostEqual(records[1]['compile_s_vs_first'],
                           records[1]['compile_s'] / records[0]['compile_s'])


class InputBenchmarkTest(_CliTestCase):
  """The input benchmark on shapes/tiny and on Flickr8k's photos, at 32 px.

  One run per dataset, so that no run is repeated when pytest-xdist spreads
  the tests over workers.
  """

  STAGES = ['prepare', 'pipeline_uncached', 'pipeline_cached', 'train_run']

  def check_dataset(self, dataset: str, train_images: int):
    data_dir = self.enterContext(tempfile.TemporaryDirectory())
    records = self.json_records(
        'input', f'--datasets={dataset}', '--image_size=32',
        '--input_batches=2', '--train_steps=2',
        # The quickest model to compile: Show-and-Tell on a small CNN.
        '--input_config=shapes:tiny,model=show_tell',
        f'--data_dir={data_dir}', f'--manual_dir={FLICKR_1K}', *QUICK_FLAGS)
    self.assertEqual([r['stage'] for r in records], self.STAGES)
    for record in records:
      self.assertEqual((record['benchmark'], record['dataset']),
                       ('input', dataset))
    prepare, uncached, cached, train_run = records
    self.assertEqual(prepare['train_images'], train_images)
    self.assertEqual(prepare['image_shape'][:2], [32, 32])
    self.assertGreater(prepare['vocab_size'], 4)
    for record in (uncached, cached):
      self.assert_figures(record, ('images_per_s', 'captions_per_s'))
      # Each image of both datasets has 5 captions: all are read.
      self.assertAlmostEqual(
          record['captions_per_s'],
          record['images_per_s'] * record['captions_per_image'],
          delta=1e-9 * record['captions_per_s'])
    self.assert_figures(train_run, ('step_ms_pipeline', 'step_ms_memory',
                                    'images_per_s', 'captions_per_s'))
    self.assertEqual(train_run['steps'], 2)
    self.assertAlmostEqual(
        train_run['pipeline_over_memory'],
        train_run['step_ms_pipeline'] / train_run['step_ms_memory'])

  def test_shapes_records(self):
    self.check_dataset('shapes/tiny', train_images=240)

  @absltest.skipUnless(os.path.isdir(FLICKR_1K),
                       f'no Flickr8k photos in {FLICKR_1K}')
  def test_flickr8k_photo_records(self):
    self.check_dataset('flickr8k', train_images=753)  # the official split


@absltest.skipUnless(torch_reference.available(), 'torch is not installed')
class TorchReferenceTest(parameterized.TestCase):

  def _twin(self, size: bench_model.ModelSize, params):
    """The PyTorch model holding capjax's parameters."""
    import torch  # pylint: disable=g-import-not-at-top

    module = torch_reference._module(size)  # pylint: disable=protected-access
    p = jax.tree.map(lambda x: torch.from_numpy(np.array(x)),
                     params['decoder'])
    rnn = p['rnn']
    hidden_bias = torch.zeros_like(rnn['input']['bias'])
    if size.cell == 'gru':  # only the candidate gate has a recurrent bias
      hidden_bias[2 * size.hidden:] = rnn['recurrent_bias']
    with torch.no_grad():
      module.image_embed.weight.copy_(p['image_embed']['kernel'].T)
      module.image_embed.bias.copy_(p['image_embed']['bias'])
      module.embed.weight.copy_(p['embed']['embedding'])
      module.rnn.weight_ih_l0.copy_(rnn['input']['kernel'].T)
      module.rnn.bias_ih_l0.copy_(rnn['input']['bias'])
      module.rnn.weight_hh_l0.copy_(rnn['recurrent'].T)
      module.rnn.bias_hh_l0.copy_(hidden_bias)
      module.output.weight.copy_(p['output']['kernel'].T)
      module.output.bias.copy_(p['output']['bias'])
    return module

  @parameterized.parameters('lstm', 'gru')
  def test_pytorch_twin_computes_the_same_logits(self, cell):
    import torch  # pylint: disable=g-import-not-at-top

    size = bench_model.ModelSize(decoder=cell, feature_dim=6, **MODEL)
    model, params = bench_model.init_params(size)
    # Random values everywhere (biases and the GRU's recurrent bias too).
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    params = jax.tree.unflatten(tree, [
        0.5 * jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)])
    batch = bench_model.batch(size)
    inputs = batch['tokens'][:, :-1]
    expected, _ = model.logits(params, batch['image'], inputs, train=False)
    got = self._twin(size, params)(torch.from_numpy(batch['image']),
                                   torch.from_numpy(inputs).long())
    np.testing.assert_allclose(got.detach().numpy(), expected,
                               rtol=1e-4, atol=1e-5)

  def test_record_carries_the_train_figures(self):
    size = bench_model.ModelSize(**MODEL)
    records = torch_reference.train_step_records(size, repeats=1, warmup=1,
                                                 gflop_per_step=0.5)
    self.assertLen(records, 1)
    record = records[0]
    self.assertEqual((record['benchmark'], record['impl']),
                     ('train_step', 'pytorch'))
    for key in ('tokens_per_s', 'captions_per_s', 'step_ms',
                'achieved_gflop_per_s'):
      self.assertGreater(record[key], 0, msg=key)
    self.assertAlmostEqual(record['achieved_gflop_per_s'] * record['step_ms'],
                           0.5e3)
    # Two Adam steps from a fresh init: still near the uniform guess.
    self.assertLess(abs(record['loss'] - math.log(MODEL['vocab'])), 0.5)


class MetricsCliTest(absltest.TestCase):

  def test_metrics_benchmark_emits_json_lines(self):
    done = run_cli('metrics', '--num_images=30', '--repeats=1', '--warmup=0',
                   '--notoolkit', '--process_repeats=1', '--json')
    self.assertEqual(done.returncode, 0, msg=done.stderr)
    records = [json.loads(line) for line in done.stdout.splitlines()]
    stages = [r['stage'] for r in records]
    # 'process': a whole `capjax.evaluate --references --results` process.
    self.assertEqual(stages, ['tokenize', 'ngram_table', 'bleu', 'rouge_l',
                              'cider_d', 'total', 'process'])
    for record in records:
      self.assertEqual(record['num_images'], 30)
      self.assertGreater(record['seconds'], 0)
      self.assertGreater(record['images_per_s'], 0)

  def test_unknown_benchmark_is_a_usage_error(self):
    done = run_cli('nope')
    self.assertNotEqual(done.returncode, 0)
    self.assertIn('metrics', done.stdout + done.stderr)


class CommandLineErrorTest(absltest.TestCase):
  """A bad command line is one `error:` line and exit code 2, no usage."""

  def assertOneErrorLine(self, done, pattern):
    self.assertEqual(done.returncode, 2, msg=done.stderr)
    self.assertEqual(done.stdout, '')
    lines = done.stderr.splitlines()
    self.assertLen(lines, 1, msg=done.stderr)
    self.assertRegex(lines[0], f'^error: {pattern}$')

  def test_an_unknown_or_missing_benchmark_lists_the_benchmarks(self):
    # (capjax.benchmark is not imported here: its flags would clash with
    # mrnn_tables' in one test process.)
    names = r'\w+(?:, \w+)+\.'
    done = run_cli('NOPE')
    self.assertOneErrorLine(
        done, f"unknown benchmark 'NOPE': choose one of {names}")
    listed = done.stderr.strip()[:-1].split(' one of ')[1].split(', ')
    self.assertContainsSubset(['train_step', 'decode', 'metrics'], listed)
    self.assertOneErrorLine(
        run_cli(), rf'name one benchmark \(given: none\); one of {names}')

  def test_a_bad_flag_value_is_its_reason_alone(self):
    self.assertOneErrorLine(
        run_cli('train_step', '--dtype=float16'),
        re.escape("--dtype: unknown ['float16']; choose from "
                  "('float32', 'bfloat16')."))
    self.assertOneErrorLine(
        run_cli('train_step', '--batch=abc'),
        re.escape("flag --batch=abc: invalid literal for int() with base "
                  "10: 'abc'"))


if __name__ == '__main__':
  absltest.main()
