"""Evaluators draw a progress line that ends at total/total, on process 0
only, and nothing when `--verbosity` (absl) is below INFO."""

import contextlib
import io
from unittest import mock

from absl import flags
from absl import logging
from absl.testing import absltest
from absl.testing import flagsaver
import jax
import numpy as np

from capjax import logs
from capjax import parallel
from capjax import progress
from capjax.data import pipeline
from capjax.data import vocab as vocab_lib
from capjax.evaluators import captions
from capjax.evaluators import likelihood_retrieval
from capjax.evaluators import perplexity
from capjax.evaluators import split_data
from capjax.models import captioning
from capjax.tasks import captioning as captioning_task
from configs.captioning import shapes as caption_shapes
from configs.mrnn import shapes as mrnn_shapes


def final_lines(text: str) -> list[str]:
  """The last drawing of each line of a stream ('\\r' redraws in place)."""
  return [line.rsplit('\r', 1)[-1] for line in text.split('\n') if line]


class VerbosityTestCase(absltest.TestCase):
  """Runs each test at absl's INFO verbosity and restores the level."""

  def setUp(self):
    super().setUp()
    self.addCleanup(logging.set_verbosity, logging.get_verbosity())
    logging.set_verbosity(logging.INFO)


class CaptioningEvaluatorsTest(VerbosityTestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    config = caption_shapes.get_config('tiny')
    config.eval.batch_size = 8
    config.eval.max_examples = 20  # batches of 8: 8, 8, then 4 of 8
    config.eval.metrics = ('bleu',)
    config.eval.gallery_size = 0
    config.eval.max_decode_len = 6
    cls.config = config
    train = pipeline.open_split(config.dataset, 'train')
    vocab = vocab_lib.Vocab.build(pipeline.all_captions(train))
    cls.meta = captioning_task.meta_of(vocab)
    cls.model = captioning_task.create_model(config, cls.meta)
    images = np.stack([train.image(i) for i in range(2)])
    cls.params = jax.jit(cls.model.init)(jax.random.key(0), images,
                                         np.ones((2, 4), np.int32))
    cls.mesh = parallel.make_mesh()

  def run_evaluator(self, kind) -> str:
    evaluator = kind(self.config, captioning_task, self.model, self.meta,
                     'test', self.mesh)
    stream = io.StringIO()
    with contextlib.redirect_stderr(stream):
      evaluator.run(self.params)
    return stream.getvalue()

  def test_captions_line_ends_at_max_examples(self):
    lines = final_lines(self.run_evaluator(captions.Captions))
    self.assertLen(lines, 1)
    self.assertStartsWith(lines[0], 'captions test: 20/20 images  ')
    self.assertIn('ETA', lines[0])

  def test_perplexity_line_counts_the_scored_batches(self):
    # max_examples 20 scores whole batches: 3 batches of 8 images.
    text = self.run_evaluator(perplexity.Perplexity)
    lines = final_lines(text)
    self.assertLen(lines, 1)
    self.assertStartsWith(lines[0], 'perplexity test: 24/24 images  ')
    # The first batch is drawn as soon as it is scored, not at the end.
    self.assertStartsWith(text, '\rperplexity test: 8/24 images  ')

  def test_silent_below_info_verbosity(self):
    logging.set_verbosity(logging.WARNING)
    self.assertEqual(self.run_evaluator(captions.Captions), '')
    self.assertEqual(self.run_evaluator(perplexity.Perplexity), '')


class LikelihoodRetrievalTest(VerbosityTestCase):

  def test_one_program_gets_a_start_and_an_end_line(self):
    config = mrnn_shapes.get_config('tiny')
    config.eval.likelihood.num_images = 4
    config.eval.likelihood.prior_images = 2
    train = split_data.open_split(config, 'train')
    vocab = vocab_lib.Vocab.build(pipeline.all_captions(train))
    meta = {'vocab': vocab.to_json()}
    model = captioning.create(config, len(vocab))
    params = jax.jit(model.init)(jax.random.key(0),
                                 split_data.images(train, 2),
                                 np.ones((2, 4), np.int32))
    evaluator = likelihood_retrieval.Evaluator(
        config, None, model, meta, 'test', parallel.make_mesh())
    stream = io.StringIO()
    with contextlib.redirect_stderr(stream):
      raw, _ = evaluator.scores(params)
    sentences = raw.shape[1]
    start, end = stream.getvalue().split('\n')[:-1]
    self.assertStartsWith(
        start, f'likelihood_retrieval test: log P(s | I) of 4 images and 2 '
        f'prior images x {sentences} sentences ({6 * sentences} pairs) in ')
    self.assertRegex(end, r'^likelihood_retrieval test: done in \d+\.\ds$')
    # Another process runs the same program and says nothing.
    other = io.StringIO()
    with (mock.patch.object(jax, 'process_index', return_value=1),
          contextlib.redirect_stderr(other)):
      evaluator.scores(params)
    self.assertEqual(other.getvalue(), '')


class ProgressLineTest(absltest.TestCase):

  def test_each_count_is_drawn_once_and_close_ends_the_line(self):
    stream = io.StringIO()
    bar = progress.Progress(4, stream=stream, every_s=0.0, label='x')
    bar.update(2)
    bar.update(2)  # the total: drawn here, not again by close
    bar.close()
    drawn = stream.getvalue()
    self.assertEqual(drawn.count('\r'), 2)
    self.assertTrue(drawn.endswith('\n'))
    self.assertEqual(final_lines(drawn)[0].split()[:3], ['x:', '4/4', 'images'])
    stream = io.StringIO()
    bar = progress.Progress(4, stream=stream, every_s=3600.0)
    bar.update(1)  # drawn (the first draw is always due)
    bar.update(1)  # not yet due
    bar.close()  # draws the last count before ending the line
    self.assertEqual(stream.getvalue().count('\r'), 2)
    self.assertTrue(final_lines(stream.getvalue())[0].startswith('2/4 '))


class ShownTest(VerbosityTestCase):

  def test_process_zero_only(self):
    self.assertIsInstance(progress.bar(3, 'images', 'x'), progress.Progress)
    stream = io.StringIO()
    with mock.patch.object(jax, 'process_index', return_value=1):
      bar = progress.bar(3, 'images', 'x')
      with contextlib.redirect_stderr(stream):
        bar.update(3)
        bar.close()
        with progress.program('x', 'work'):
          pass
    self.assertIsInstance(bar, progress.Silent)
    self.assertEqual(stream.getvalue(), '')

  def test_command_line_verbosity_wins_over_quiet_libraries(self):
    was_parsed = flags.FLAGS.is_parsed()
    if not was_parsed:
      self.addCleanup(flags.FLAGS.unparse_flags)
    with flagsaver.flagsaver():
      flags.FLAGS.mark_as_parsed()
      logs.quiet_libraries()
      self.assertTrue(progress.shown())  # no --verbosity: progress shown
      flags.FLAGS['verbosity'].parse('-1')  # as `--verbosity=-1` does
      logs.quiet_libraries()
      self.assertFalse(progress.shown())


if __name__ == '__main__':
  absltest.main()
