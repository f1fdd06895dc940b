"""Tests of what a trained workdir serves: evaluate --workdir and caption."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

from absl.testing import absltest
from PIL import Image

from capjax import checkpointing
from capjax import inference
from capjax import train
from capjax.data import pipeline
from configs.captioning import shapes as shapes_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TrainedWorkdirTest(absltest.TestCase):
  """One tiny training run, then everything that reads its workdir."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix='capjax-workdir-test-')
    cls.workdir = os.path.join(cls.root, 'run')
    config = shapes_config.get_config('tiny')
    config.dataset.data_dir = os.path.join(cls.root, 'data')
    config.train.num_steps = 40
    config.optimizer.learning_rate = 1e-2
    config.eval.splits = ('test',)
    cls.metrics = train.train_and_evaluate(config, cls.workdir)['test']
    with open(os.path.join(cls.workdir, 'eval', 'test_captions.json')) as f:
      cls.captions = {c['image_id']: c['caption'] for c in json.load(f)}
    images = os.path.join(cls.root, 'images')
    os.makedirs(images)
    source = pipeline.open_split(config.dataset, 'test')
    cls.image_paths = []
    # TFDS shuffles a split's examples: example i is not image 2_000_000 + i.
    cls.image_ids = [int(i) for i in source.image_ids[:3]]
    for i in range(3):
      path = os.path.join(images, f'image{i}.png')
      Image.fromarray(source.image(i)).save(path)
      cls.image_paths.append(path)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def _run(self, module, *args):
    return subprocess.run([sys.executable, '-m', module, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)

  def _copy_of_workdir(self):
    copy = tempfile.mkdtemp(dir=self.root)
    shutil.copytree(self.workdir, copy, dirs_exist_ok=True)
    return copy

  def test_evaluate_workdir_reproduces_the_training_evaluation(self):
    again = inference.evaluate_workdir(self._copy_of_workdir(), 'test')
    self.assertEqual(self.metrics.keys(), again.keys())
    for key in self.metrics:
      self.assertAlmostEqual(self.metrics[key], again[key], places=5,
                             msg=key)

  def test_beam_search_evaluation_captions_every_image(self):
    workdir = self._copy_of_workdir()
    metrics = inference.evaluate_workdir(workdir, 'test', beam_size=3)
    self.assertEqual(metrics['num_images'], 40)
    with open(os.path.join(workdir, 'eval', 'test_captions.json')) as f:
      self.assertLen(json.load(f), 40)

  def test_caption_files_uses_the_checkpoint_config_and_vocabulary(self):
    captions = inference.caption_files(self.workdir, self.image_paths)
    # The files are the first test images: decoding them from disk gives the
    # captions the evaluation gave.
    self.assertEqual(captions, [self.captions[i] for i in self.image_ids])

  def test_caption_command_prints_one_line_per_image(self):
    result = self._run('capjax.caption', f'--workdir={self.workdir}',
                       *self.image_paths)
    self.assertEqual(result.returncode, 0, result.stderr[-2000:])
    lines = result.stdout.rstrip('\n').split('\n')
    self.assertEqual(lines, [f'{path}\t{self.captions[i]}'
                             for i, path in zip(self.image_ids,
                                                self.image_paths)])

  def test_unreadable_image_is_a_one_line_error(self):
    bad = os.path.join(self.root, 'broken.jpg')
    with open(bad, 'wb') as f:
      f.write(b'\xff\xd8 this is not a jpeg')
    result = self._run('capjax.caption', f'--workdir={self.workdir}', bad)
    self.assertEqual(result.returncode, 1)
    lines = result.stderr.strip().splitlines()
    self.assertLen(lines, 1)
    self.assertStartsWith(lines[0], f'error: Corrupt or unreadable image {bad}')

  def test_missing_image_is_a_one_line_error(self):
    missing = os.path.join(self.root, 'nowhere.png')
    result = self._run('capjax.caption', f'--workdir={self.workdir}', missing)
    self.assertEqual(result.returncode, 1)
    self.assertEqual(
        result.stderr.strip(),
        f'error: Cannot read image {missing}: No such file or directory.')

  def test_a_checkpoint_that_does_not_fit_its_model_is_named(self):
    # What an older capjax's checkpoint looks like to this one: a parameter
    # of today's model is not in it.
    config, meta, params, step = checkpointing.restore_trained(
        self.workdir)
    params = dict(params, encoder=dict(params['encoder']))
    del params['encoder']['global_norm']
    with mock.patch.object(checkpointing, 'restore_trained',
                           return_value=(config, meta, params, step)):
      with self.assertRaisesRegex(
          checkpointing.CheckpointMismatchError,
          'does not fit the model its own config builds.*global_norm'):
        inference.caption_files(self.workdir, self.image_paths[:1])

  def test_evaluate_says_it_cannot_write_before_decoding(self):
    copy = self._copy_of_workdir()
    shutil.rmtree(os.path.join(copy, 'eval'))
    with open(os.path.join(copy, 'eval'), 'w') as f:
      f.write('a file where the results folder should be')
    result = self._run('capjax.evaluate', f'--workdir={copy}')
    self.assertEqual(result.returncode, 1)
    errors = [line for line in result.stderr.splitlines()
              if line.startswith('error:')]
    self.assertLen(errors, 1)
    self.assertIn(f'Cannot write to {copy}/eval', errors[0])
    self.assertNotIn('Captioned test', result.stderr)

  def test_training_on_a_workdir_of_another_model_is_a_one_line_error(self):
    copy = self._copy_of_workdir()
    result = self._run(
        'capjax.main', '--config=configs/captioning/shapes.py:tiny,model=merge',
        f'--workdir={copy}',
        f'--config.dataset.data_dir={os.path.join(self.root, "data")}',
        '--config.train.num_steps=40')
    self.assertEqual(result.returncode, 1, result.stderr[-1000:])
    lines = [line for line in result.stderr.strip().splitlines()
             if line.startswith('error:')]
    self.assertLen(lines, 1)
    self.assertRegex(lines[0], r'holds another model than this config builds '
                     r'\(missing decoder/.*use a new --workdir')


class MissingWorkdirTest(absltest.TestCase):

  def _run(self, module, *args):
    return subprocess.run([sys.executable, '-m', module, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)

  def test_evaluate_without_checkpoint_is_a_one_line_error(self):
    empty = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, empty)
    result = self._run('capjax.evaluate', f'--workdir={empty}')
    self.assertEqual(result.returncode, 1)
    lines = result.stderr.strip().splitlines()
    self.assertLen(lines, 1)
    self.assertIn(f'No latest checkpoint in {empty}/checkpoints', lines[0])

  def test_caption_without_workdir_is_a_one_line_error(self):
    result = self._run('capjax.caption', '--workdir=/no/such/run', 'x.png')
    self.assertEqual(result.returncode, 1)
    self.assertEqual(
        result.stderr.strip(),
        'error: Workdir /no/such/run does not exist: train first with '
        '`python -m capjax.main --config=... --workdir=/no/such/run`.')


if __name__ == '__main__':
  absltest.main()
