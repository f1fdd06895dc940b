"""The benchmark entry point and the reusable timer."""

import json
import os
import subprocess
import sys

from absl.testing import absltest
import jax.numpy as jnp

from capjax.benchmarks import timing

ROOT = os.path.join(os.path.dirname(__file__), '..')


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

  def test_rejects_zero_repeats(self):
    with self.assertRaises(ValueError):
      timing.time_fn(lambda: None, repeats=0)


class BenchmarkCliTest(absltest.TestCase):

  def test_metrics_benchmark_emits_json_lines(self):
    done = subprocess.run(
        [sys.executable, '-m', 'capjax.benchmark', 'metrics',
         '--num_images=30', '--repeats=1', '--warmup=0', '--notoolkit',
         '--json'], cwd=ROOT, capture_output=True, text=True, timeout=300)
    self.assertEqual(done.returncode, 0, msg=done.stderr)
    records = [json.loads(line) for line in done.stdout.splitlines()]
    stages = [r['stage'] for r in records]
    self.assertEqual(stages, ['tokenize', 'ngram_table', 'bleu', 'rouge_l',
                              'cider_d', 'total'])
    for record in records:
      self.assertEqual(record['num_images'], 30)
      self.assertGreater(record['seconds'], 0)
      self.assertGreater(record['images_per_s'], 0)

  def test_unknown_benchmark_is_a_usage_error(self):
    done = subprocess.run([sys.executable, '-m', 'capjax.benchmark', 'nope'],
                          cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    self.assertNotEqual(done.returncode, 0)
    self.assertIn('metrics', done.stdout + done.stderr)


if __name__ == '__main__':
  absltest.main()
