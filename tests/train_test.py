"""Tests of the training loop: devices, pmap, resume, NaN and bad input."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np

from capjax import atomic_write
from capjax import checkpointing
from capjax import train
from configs.captioning import shapes as shapes_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = None  # set once per process in setUpModule


def setUpModule():
  global DATA_DIR
  DATA_DIR = tempfile.mkdtemp(prefix='capjax-train-test-')


def tearDownModule():
  shutil.rmtree(DATA_DIR, ignore_errors=True)


def tiny_config(**overrides):
  """The tiny shapes config with test-friendly settings."""
  config = shapes_config.get_config('tiny')
  config.dataset.data_dir = DATA_DIR
  config.train.num_steps = 12
  config.train.log_every = 4
  config.train.checkpoint_every = 4
  config.eval.splits = ('test',)
  config.eval.gallery_size = 2
  config.unlock()
  for key, value in overrides.items():
    node = config
    *path, last = key.split('.')
    for part in path:
      node = node[part]
    node[last] = value
  config.lock()
  return config


def _restore_params(workdir: str):
  _, _, params, step = checkpointing.restore_trained(workdir)
  return params, step


class TrainTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.workdir = tempfile.mkdtemp(prefix='capjax-run-', dir=DATA_DIR)

  def test_training_lowers_the_loss_and_writes_results(self):
    config = tiny_config(**{'train.num_steps': 40, 'train.log_every': 40,
                            'optimizer.learning_rate': 1e-2})
    results = train.train_and_evaluate(config, self.workdir)
    metrics = results['test']
    # A model that learnt nothing has the perplexity of a uniform guess over
    # the vocabulary (about 45 words); training must beat it clearly.
    with open(os.path.join(self.workdir, 'meta.json')) as f:
      vocab_size = len(json.load(f)['vocabulary']['words'])
    self.assertLess(metrics['perplexity'], vocab_size / 3)
    for name in ('test_captions.json', 'test_metrics.json',
                 'test_gallery.png', 'test_gallery.html'):
      self.assertTrue(
          os.path.exists(os.path.join(self.workdir, 'eval', name)), name)
    with open(os.path.join(self.workdir, 'eval', 'test_captions.json')) as f:
      captions = json.load(f)
    self.assertLen(captions, 40)  # every tiny test image, none dropped
    for key in ('Bleu_4', 'ROUGE_L', 'CIDEr', 'caption_accuracy'):
      self.assertIn(key, metrics)

  def test_one_and_eight_devices_give_the_same_numbers(self):
    self.assertGreaterEqual(jax.device_count(), 8)
    results = {}
    for devices in (1, 8):
      workdir = os.path.join(self.workdir, f'd{devices}')
      config = tiny_config(**{'parallel.num_devices': devices})
      results[devices] = train.train_and_evaluate(config, workdir)['test']
      params, _ = _restore_params(workdir)
      results[devices]['params'] = params
    one, eight = results[1], results[8]
    for a, b in zip(jax.tree.leaves(one.pop('params')),
                    jax.tree.leaves(eight.pop('params'))):
      np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)
    self.assertEqual(one.keys(), eight.keys())
    for key in one:
      self.assertAlmostEqual(one[key], eight[key], delta=1e-4, msg=key)

  def test_pmap_path_matches_the_jit_path(self):
    results = {}
    for mode in ('jit', 'pmap'):
      workdir = os.path.join(self.workdir, mode)
      config = tiny_config(**{'parallel.mode': mode,
                              'train.num_steps': 8})
      train.train_and_evaluate(config, workdir)
      results[mode], _ = _restore_params(workdir)
    for a, b in zip(jax.tree.leaves(results['jit']),
                    jax.tree.leaves(results['pmap'])):
      np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)

  def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(self):
    real_step = train.train_step

    def poisoned_step(state, batch, rng, **kwargs):
      # From step 6 on the parameters are NaN, as after a blow-up.
      state = state.replace(params=jax.tree.map(
          lambda p: jnp.where(state.step >= 6, jnp.nan, p), state.params))
      return real_step(state, batch, rng, **kwargs)

    train.train_step = poisoned_step
    try:
      with self.assertRaisesRegex(FloatingPointError,
                                  'last good checkpoint is step 4'):
        train.train_and_evaluate(tiny_config(), self.workdir)
    finally:
      train.train_step = real_step
    params, step = _restore_params(self.workdir)
    self.assertEqual(step, 4)
    for leaf in jax.tree.leaves(params):
      self.assertTrue(np.all(np.isfinite(leaf)))

  def test_a_workdir_of_another_task_is_refused_naming_both(self):
    # What a retrieval run leaves in its workdir, then a captioner given it.
    atomic_write.write_json(os.path.join(self.workdir, 'config.json'),
                            {'task': 'retrieval'})
    atomic_write.write_json(os.path.join(self.workdir, 'meta.json'),
                            {'format': 'capjax.retrieval_meta', 'vocab': {}})
    with self.assertRaisesRegex(
        train.MetaMismatchError,
        f"^{self.workdir} holds a run of another task \\(config.task "
        "'retrieval'\\); this config trains 'captioning'"):
      train.train_and_evaluate(tiny_config(), self.workdir)
    self.assertFalse(os.path.exists(os.path.join(self.workdir,
                                                 'checkpoints')))

  def test_a_workdir_of_another_vocabulary_is_refused(self):
    train.train_and_evaluate(tiny_config(**{'train.num_steps': 4}),
                             self.workdir)
    other = tiny_config(**{'train.num_steps': 8, 'dataset.min_count': 400})
    with self.assertRaisesRegex(ValueError, 'another vocabulary'):
      train.train_and_evaluate(other, self.workdir)


def _main_command(workdir, *extra):
  return [sys.executable, '-m', 'capjax.main',
          '--config=configs/captioning/shapes.py:tiny', f'--workdir={workdir}',
          f'--config.dataset.data_dir={DATA_DIR}', *extra]


class CommandLineTest(absltest.TestCase):

  def _run(self, *args, **kwargs):
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True,
                          timeout=600, **kwargs)

  def test_unknown_config_key_is_a_one_line_error(self):
    result = self._run(*_main_command('/tmp/never', '--config.train.nope=1'))
    self.assertEqual(result.returncode, 2)
    self.assertEqual(
        result.stderr.strip(),
        "error: unknown config key 'train.nope' (from --config.train.nope): "
        'the config file has no such field.')

  def test_unknown_variant_is_a_one_line_error(self):
    result = self._run(sys.executable, '-m', 'capjax.main',
                       '--config=configs/captioning/shapes.py:tiny,huge',
                       '--workdir=/tmp/never')
    self.assertEqual(result.returncode, 2)
    self.assertLen(result.stderr.strip().splitlines(), 1)
    self.assertIn("Unknown config variant ['huge']", result.stderr)

  def test_a_misspelt_key_names_it_and_the_likely_one(self):
    result = self._run(*_main_command('/tmp/never',
                                      '--config.train.nmu_steps=1'))
    self.assertEqual(result.returncode, 2)
    self.assertEqual(
        result.stderr.strip(),
        "error: unknown config key 'train.nmu_steps' (from "
        '--config.train.nmu_steps): the config file has no such field. Did '
        'you mean "num_steps" instead of "nmu_steps"?')

  def test_a_bad_config_value_is_one_line_and_writes_nothing(self):
    workdir = os.path.join(tempfile.mkdtemp(dir=DATA_DIR), 'run')
    result = self._run(*_main_command(workdir,
                                      '--config.model.decoder=transformer'))
    self.assertEqual(result.returncode, 1)
    lines = result.stderr.strip().splitlines()
    self.assertLen(lines, 1)
    self.assertRegex(lines[0], r"^error: config.model.decoder='transformer' "
                     r"is unknown: choose one of \[.*'soft_attention'.*\]\.$")
    self.assertFalse(os.path.exists(workdir))

  def test_ctrl_c_saves_the_step_it_stops_at_and_says_so_in_one_line(self):
    workdir = os.path.join(tempfile.mkdtemp(dir=DATA_DIR), 'run')
    checkpoints = os.path.join(workdir, 'checkpoints')
    process = subprocess.Popen(
        _main_command(workdir, '--config.train.num_steps=100000',
                      '--config.train.checkpoint_every=5'),
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
        # As at a terminal, whatever the test runner does with SIGINT.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while not (os.path.isdir(checkpoints)
               and any(d.isdigit() for d in os.listdir(checkpoints))):
      self.assertIsNone(process.poll(), 'the run ended early')
      self.assertLess(time.time(), deadline)
      time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    self.assertEqual(process.returncode, 130)
    self.assertNotIn('Traceback', stderr)
    step = checkpointing.find_checkpoint(workdir)[1]
    # The step it stopped at is saved: the latest checkpoint.
    self.assertStartsWith(
        stderr.strip().splitlines()[-1],
        f'error: Stopped by SIGINT after saving step {step} of {workdir}: '
        'resume with python -m capjax.main --config=')

  def test_a_workdir_that_cannot_be_written_is_one_line(self):
    blocker = os.path.join(tempfile.mkdtemp(dir=DATA_DIR), 'a-file')
    with open(blocker, 'w') as f:
      f.write('not a directory')
    result = self._run(*_main_command(os.path.join(blocker, 'run')))
    self.assertEqual(result.returncode, 1)
    lines = result.stderr.strip().splitlines()
    self.assertLen(lines, 1)
    self.assertStartsWith(lines[0], f'error: Cannot write to {blocker}/run')


if __name__ == '__main__':
  absltest.main()
