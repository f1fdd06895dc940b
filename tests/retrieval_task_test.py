"""The retrieval task, evaluator and `capjax.retrieve` on tiny shapes."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

from absl.testing import absltest
import jax
import numpy as np
from PIL import Image

from capjax import checkpointing
from capjax import parallel
from capjax import retrieval_index
from capjax import retrieval_report
from capjax import summaries
from capjax import train
from capjax.data import images as images_lib
from capjax.evaluators import retrieval as retrieval_evaluator
from capjax.metrics import retrieval as retrieval_metrics
from capjax.models.retrieval import alignment
from capjax.models.retrieval import scoring
from capjax.tasks import retrieval as task
from configs.retrieval import shapes as shapes_config


def _config(data_dir, model='bilstm'):
  config = shapes_config.get_config(f'tiny,model={model}')
  config.dataset.data_dir = data_dir
  config.train.num_steps = 12
  config.train.log_every = 6
  config.train.prefetch = 0
  config.eval.batch_size = 16
  config.eval.gallery_size = 2
  config.retrieval.folds = 5  # 5 folds of the 40 tiny test images
  return config


class RetrievalTaskTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='capjax-retrieval-test-')
    cls.workdir = os.path.join(cls.tmp, 'run')
    cls.config = _config(os.path.join(cls.tmp, 'data'))
    cls.results = train.train_and_evaluate(cls.config, cls.workdir)
    cls.retriever = retrieval_index.Retriever(cls.workdir)
    batches, cls.meta = task.open_data(cls.config)
    cls.batch = next(iter(batches(0)))

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def test_training_lowers_the_loss(self):
    # The one train loop's fresh parameters against the trained ones.
    fresh = train.setup(self.config, self.meta, self.batch).state.params
    model = self.retriever.model

    def loss(params):
      totals = task.totals(model, params, self.batch, train=False)
      return float(task.loss(totals, totals, self.config))

    self.assertLess(loss(self.retriever.params), 0.9 * loss(fresh))

  def test_eight_devices_score_the_global_batch_like_one(self):
    model, params = self.retriever.model, self.retriever.params
    mesh = parallel.make_mesh()
    self.assertEqual(mesh.size, 8)
    totals = jax.jit(lambda p, b: task.totals(model, p, b, train=False))
    one = totals(params, self.batch)
    sharded = totals(parallel.replicate(params, mesh),
                     parallel.shard_batch(self.batch, mesh))
    for key in one:
      np.testing.assert_allclose(sharded[key], one[key], rtol=1e-5)
    self.assertEqual(float(one['queries']), 2 * len(self.batch['image']))

  def test_evaluator_matches_scoring_the_whole_split_at_once(self):
    model, params = self.retriever.model, self.retriever.params
    source = task.open_split(self.config, 'test')
    vocab = task.vocab_of(self.meta)
    images = np.stack([source.image(i) for i in range(len(source))])
    captions = [c for cs in source.captions for c in cs[:5]]
    owner = np.repeat(np.arange(len(source)), 5)
    tokens = vocab.encode_batch(captions, self.config.dataset.max_len)
    scores = jax.jit(lambda p, i, t: model.similarity(
        model.embed_images(p, i), model.embed_texts(p, t)))(
            params, images, tokens)
    want = retrieval_metrics.evaluate(np.asarray(scores), owner)
    got = self.results['test']
    for key, value in want.items():
      self.assertAlmostEqual(got[key], value, places=3, msg=key)
    self.assertEqual(got['num_captions'], len(captions))
    folds = retrieval_metrics.evaluate_folds(np.asarray(scores), owner, 5)
    self.assertAlmostEqual(got['fold_rsum'], folds['rsum'], places=3)
    labels = retrieval_evaluator.dominant_shapes(source)
    classes = retrieval_metrics.class_precision_recall_at_k(
        np.asarray(scores), labels, labels[owner], 10)
    for label, (precision, recall) in classes.items():
      self.assertAlmostEqual(got[f'i2t_p@10/{label}'], 100 * precision, 3)
      self.assertAlmostEqual(got[f'i2t_r@10/{label}'], 100 * recall, 3)
    written = os.listdir(os.path.join(self.workdir, 'eval'))
    self.assertIn('retrieval_test_queries.png', written)

  def test_text_query_ranks_the_index_by_similarity(self):
    results = self.retriever.text_query('test', 'a red circle', top_k=3)
    arrays, info = self.retriever.load('test')
    query = self.retriever.embed_sentences(['a red circle'])
    scores = np.asarray(arrays['images'] @ query.T)[:, 0]
    order = np.argsort(-scores, kind='stable')[:3]
    self.assertEqual([r['image_id'] for r in results],
                     [info['image_ids'][i] for i in order])
    source = task.open_split(self.config, 'test')
    first = int(order[0])
    self.assertEqual(results[0]['references'], source.captions[first])
    self.assertEqual([r['rank'] for r in results], [1, 2, 3])

  def test_tensorboard_names_each_figure_as_the_metrics_file_does(self):
    scalars = summaries.read_scalars(self.workdir)
    for split in self.config.eval.splits:
      with open(os.path.join(self.workdir, 'eval',
                             f'{split}_metrics.json')) as f:
        metrics = json.load(f)
      self.assertTrue(any('@' in k for k in metrics))  # e.g. i2t_p@10/...
      for key, value in metrics.items():
        steps, values = zip(*scalars[f'{split}/{key}'])
        self.assertEqual(steps, (self.config.train.num_steps,))
        self.assertAlmostEqual(values[0], value, delta=1e-5 * abs(value))

  def test_a_text_query_without_words_is_refused(self):
    for text in ('', '   ', ' ... !'):
      with self.subTest(repr(text)), self.assertRaisesRegex(
          ValueError, 'The text query .* has no words: give a sentence'):
        self.retriever.text_query('test', text, top_k=3)

  def test_the_retrieve_command_refuses_an_empty_text_in_one_line(self):
    result = subprocess.run(
        [sys.executable, '-m', 'capjax.retrieve', f'--workdir={self.workdir}',
         '--index=test', '--text='], capture_output=True, text=True,
        timeout=600, check=False)
    self.assertEqual(result.returncode, 1, result.stderr)
    self.assertEqual(result.stdout, '')
    self.assertRegex(result.stderr.strip(),
                     r"^error: The text query '' has no words: [^\n]*$")

  def test_unknown_words_of_a_text_query_are_named_in_one_warning(self):
    for text, expected in (
        ('Zorblax quuxes', (r'No word of the text query is in the '
                            r"vocabulary .*\('zorblax', 'quuxes'\)")),
        ('a red zorblax circle', r"not in the vocabulary .*: 'zorblax'\.$"),
        ('q1 q2 q3 q4 q5 q6 q7', r"'q1', 'q2', 'q3', 'q4', 'q5' and 2 more")):
      with self.subTest(text):
        with self.assertLogs(level='WARNING') as logs:
          results = self.retriever.text_query('test', text, top_k=3)
        self.assertLen(logs.records, 1)
        self.assertRegex(logs.records[0].getMessage(), expected)
        self.assertLen(results, 3)  # still ranked
    with self.assertNoLogs(level='WARNING'):
      self.retriever.text_query('test', 'a red circle', top_k=3)

  def test_image_query_ranks_the_split_captions_by_similarity(self):
    source = task.open_split(self.config, 'test')
    path = os.path.join(self.tmp, 'query.png')
    Image.fromarray(source.image(0)).save(path)
    results = self.retriever.image_query('test', path, top_k=4)
    arrays, info = self.retriever.load('test')
    query = self.retriever.embed_image_files([path])
    scores = (query @ arrays['texts'].T)[0]
    order = np.argsort(-scores, kind='stable')[:4]
    self.assertEqual([r['sentence'] for r in results],
                     [info['sentences'][i] for i in order])
    owner = info['caption_image'][order[0]]
    self.assertEqual(results[0]['image_id'], info['image_ids'][owner])
    self.assertEqual(results[0]['references'], source.captions[owner])
    json.dumps(results)  # what --json prints
    with self.assertRaisesRegex(images_lib.BadImageError, 'nonexistent'):
      self.retriever.image_query('test', '/nonexistent.png')

  def _copy_of_workdir(self):
    copy = os.path.join(tempfile.mkdtemp(dir=self.tmp), 'run')
    shutil.copytree(self.workdir, copy, ignore=shutil.ignore_patterns(
        retrieval_index.INDEX_DIR))
    return copy

  def test_an_index_of_an_older_step_is_built_again(self):
    workdir = self._copy_of_workdir()
    first = retrieval_index.Retriever(workdir)
    old, _ = first.load('test')
    # The run trained further: a later step with other parameters.
    later = first.step + 1
    params = jax.tree.map(lambda p: p * 1.5, first.params)
    saver = checkpointing.Checkpointer(workdir, keep=3)
    saver.save(later, {'step': later, 'params': params}, self.config,
               self.meta)
    saver.wait()
    saver.close()
    second = retrieval_index.Retriever(workdir)
    self.assertEqual(second.step, later)
    arrays, info = second.load('test')
    source = task.open_split(self.config, 'test')
    images = np.stack([source.image(i) for i in range(len(source))])
    expected = jax.jit(second.model.embed_images)(params, images)
    self.assertFalse(np.allclose(old['images'], expected, atol=1e-3))
    np.testing.assert_allclose(arrays['images'], expected, atol=1e-4)
    self.assertEqual(info['built_from']['step'], later)

  def test_a_folder_index_is_of_the_folder_asked_for(self):
    workdir = self._copy_of_workdir()
    retriever = retrieval_index.Retriever(workdir)
    source = task.open_split(self.config, 'test')
    folders = {}
    for parent, first in (('a', 0), ('b', 3)):
      folder = os.path.join(self.tmp, parent, 'photos')  # the same name
      os.makedirs(folder)
      for i in range(first, first + 3):
        Image.fromarray(source.image(i)).save(
            os.path.join(folder, f'{parent}{i}.png'))
      folders[parent] = folder
    results_a = retriever.text_query(folders['a'], 'a red circle', top_k=3)
    results_b = retriever.text_query(folders['b'], 'a red circle', top_k=3)
    self.assertCountEqual([r['image_id'] for r in results_a],
                          ['a0.png', 'a1.png', 'a2.png'])
    self.assertCountEqual([r['image_id'] for r in results_b],
                          ['b3.png', 'b4.png', 'b5.png'])
    # A file added to the folder is in the next query's index.
    Image.fromarray(source.image(9)).save(
        os.path.join(folders['b'], 'b9.png'))
    results_b = retriever.text_query(folders['b'], 'a red circle', top_k=9)
    self.assertIn('b9.png', [r['image_id'] for r in results_b])

  def test_a_folder_index_leaves_out_unreadable_files_and_names_them(self):
    workdir = self._copy_of_workdir()
    retriever = retrieval_index.Retriever(workdir)
    source = task.open_split(self.config, 'test')
    folder = os.path.join(self.tmp, 'with_bad', 'photos')
    os.makedirs(folder)
    for i in range(2):
      Image.fromarray(source.image(i)).save(os.path.join(folder, f'g{i}.png'))
    with open(os.path.join(folder, 'broken.jpg'), 'wb') as f:
      f.write(b'not a jpeg')
    with self.assertLogs(level='WARNING') as logs:
      arrays, info = retriever.load(folder)
    self.assertEqual(info['image_ids'], ['g0.png', 'g1.png'])
    self.assertEqual(info['skipped'], ['broken.jpg'])
    self.assertLen(arrays['images'], 2)
    np.testing.assert_allclose(
        arrays['images'],
        retriever.embed_image_files([os.path.join(folder, 'g0.png'),
                                     os.path.join(folder, 'g1.png')]),
        atol=1e-6)
    self.assertRegex(logs.output[0], 'broken.jpg.*left out of the index')

  def test_a_build_killed_before_its_description_is_not_used(self):
    workdir = self._copy_of_workdir()
    retriever = retrieval_index.Retriever(workdir)
    source = task.open_split(self.config, 'test')
    folder = os.path.join(self.tmp, 'killed', 'photos')
    os.makedirs(folder)
    for i in range(3):
      Image.fromarray(source.image(i)).save(
          os.path.join(folder, f'p{i}.png'))
    retriever.load(folder)
    extra = os.path.join(folder, 'p3.png')
    Image.fromarray(source.image(3)).save(extra)
    # Killed after the new embeddings are written, before index.json.
    with mock.patch.object(retrieval_index.atomic_write, 'write_json',
                           side_effect=SystemExit('killed')), \
        self.assertRaises(SystemExit):
      retriever.load(folder)
    os.remove(extra)  # back to the three files of the first build
    arrays, info = retriever.load(folder)
    self.assertEqual(info['image_ids'], ['p0.png', 'p1.png', 'p2.png'])
    self.assertLen(arrays['images'], 3)


class ScoringTest(absltest.TestCase):

  def test_chunked_alignment_scores_equal_the_plain_program(self):
    keys = jax.random.split(jax.random.key(0), 2)
    regions = np.asarray(jax.random.normal(keys[0], (7, 3, 4)))
    words = np.asarray(jax.random.normal(keys[1], (5, 6, 4)))

    class Model:
      similarity = staticmethod(alignment.similarity)

    plain = np.asarray(alignment.similarity(regions, words))
    chunked = scoring.pairwise_scores(Model, regions, words, chunk=3)
    np.testing.assert_allclose(chunked, plain, rtol=1e-5)

  def test_sharded_matmul_equals_one_device(self):
    keys = jax.random.split(jax.random.key(0), 2)
    images = np.asarray(jax.random.normal(keys[0], (11, 4)))
    texts = np.asarray(jax.random.normal(keys[1], (9, 4)))

    class Model:
      similarity = staticmethod(lambda a, b: a @ b.T)

    got = scoring.pairwise_scores(Model, images, texts,
                                  mesh=parallel.make_mesh())
    np.testing.assert_allclose(got, images @ texts.T, rtol=1e-5, atol=1e-6)

  def test_dominant_shape_is_the_largest_object(self):

    class Source:
      scenes = [json.dumps({'objects': [
          {'shape': 'circle', 'bbox': [0, 0, 5, 5]},
          {'shape': 'cross', 'bbox': [10, 10, 20, 20]}]})]

    self.assertEqual(list(retrieval_evaluator.dominant_shapes(Source)),
                     ['cross'])

  def test_word_region_boxes_frame_a_cell_or_the_whole_image(self):
    box = retrieval_report._region_box  # pylint: disable=protected-access
    self.assertEqual(box(5, 16, 64), [16, 16, 31, 31])  # row 1, column 1
    self.assertEqual(box(16, 16, 64), [1, 1, 62, 62])  # the whole image
    image = np.zeros((8, 8, 3), np.uint8)
    picture = retrieval_report.word_region_gallery(
        [(image, ['red', 'circle'], [0, 4], 4)])
    self.assertGreater(picture.width, 2 * retrieval_report.WORD_TILE)


if __name__ == '__main__':
  absltest.main()
