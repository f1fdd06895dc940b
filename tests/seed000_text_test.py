"""Seed 000's text side: caption cleaning, rare words, GloVe init, freezing."""

import functools
import os
import shutil
import tempfile

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np

from capjax import config_checks
from capjax import train
from capjax.data import caption_cleaning
from capjax.data import pipeline
from capjax.data import stopwords
from capjax.data import vocab as vocab_lib
from capjax.data import word_vectors
from capjax.metrics import tokenizer
from capjax.models import captioners
from capjax.models import captioning
from capjax.tasks import captioning as task
from configs.captioning import flickr8k_seed000
from configs.captioning import shapes as shapes_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = None  # one tiny shapes preparation for the module


def setUpModule():
  global DATA_DIR
  DATA_DIR = tempfile.mkdtemp(prefix='capjax-seed000-test-')


def tearDownModule():
  shutil.rmtree(DATA_DIR, ignore_errors=True)


def tiny_config(**overrides):
  """The tiny shapes config (merge decoder) with `overrides` set."""
  config = shapes_config.get_config('tiny,model=merge')
  config.dataset.data_dir = DATA_DIR
  config.optimizer.warmup_steps = 0
  for key, value in overrides.items():
    node = config
    *path, last = key.split('.')
    for part in path:
      node = node[part]
    node[last] = value
  return config


def write_glove(path, rows):
  with open(path, 'w', encoding='utf-8') as f:
    for word, vector in rows:
      f.write(word + ' ' + ' '.join(f'{v:.6f}' for v in vector) + '\n')


def embedding(params, model):
  decoder, name, leaf = model.word_embedding_path()
  return np.asarray(params[decoder][name][leaf])


class CleaningTest(absltest.TestCase):

  def test_stop_words_go_and_content_words_stay(self):
    clean = caption_cleaning.cleaner(stop_words=True, letter_words=False)
    self.assertEqual(clean('A dog is running through the grass .'),
                     'dog running grass')

  def test_letter_words_are_the_tutorial_cleaning(self):
    clean = caption_cleaning.cleaner(stop_words=False, letter_words=True)
    self.assertEqual(clean("A dog's T-shirt has 2 stripes , 3rd on it ."),
                     'dog tshirt has stripes on it')

  def test_cleaned_captions_tokenise_to_themselves(self):
    path = os.path.join(REPO, '..', 'shared', 'data', 'flickr8k_1k',
                        'Flickr8k.token.txt')
    with open(path, encoding='utf-8') as f:
      captions = [line.rstrip('\n').split('\t')[1] for line in f]
    captions.append('A boy ( in red ) jumps .')
    for options in ((True, False), (False, True)):
      clean = caption_cleaning.cleaner(stop_words=options[0],
                                       letter_words=options[1])
      for caption in captions:
        cleaned = clean(caption)
        self.assertEqual(' '.join(tokenizer.tokenize(cleaned)), cleaned)

  def test_no_option_means_no_cleaning(self):
    self.assertIsNone(
        caption_cleaning.cleaner(stop_words=False, letter_words=False))

  def test_keep_only_removes_other_words(self):
    keep = caption_cleaning.keep_only({'dog', 'grass'})
    self.assertEqual(keep('The dog on grass .'), 'dog grass')


class CaptionStatsTest(absltest.TestCase):

  def test_figures_of_a_small_corpus(self):
    stats = caption_cleaning.stats(
        ['dog runs on grass', 'dog sits', 'cat runs'], min_count=2,
        max_len=2, drop_rare=True)
    self.assertEqual(stats['unique_words'], 6)
    self.assertEqual(stats['vocabulary'], 2)  # dog, runs
    self.assertEqual(stats['longest_cleaned'], 4)
    self.assertEqual(stats['max_words'], 2)  # 'dog runs'
    self.assertAlmostEqual(stats['rare_token_share'], 4 / 8)
    self.assertAlmostEqual(stats['cut_share'], 1 / 3)


class StopWordsInTheTaskTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.config = tiny_config(**{'dataset.stop_words': True})
    batches, cls.meta = task.open_data(cls.config)
    cls.batches = staticmethod(batches)
    cls.vocab = task.vocab_of(cls.meta)

  def test_no_stop_word_in_the_vocabulary(self):
    stop = stopwords.english()
    words = self.vocab.words[len(vocab_lib.SPECIAL_TOKENS):]
    self.assertTrue(words)
    self.assertEmpty([w for w in words if w in stop])
    plain_vocab = task.vocab_of(task.open_data(tiny_config())[1])
    self.assertNotEmpty([w for w in plain_vocab.words if w in stop])

  def test_no_stop_word_in_the_targets(self):
    batch = next(iter(self.batches(0)))
    text = ' '.join(self.vocab.decode(t) for t in
                    batch['tokens'].reshape(-1, batch['tokens'].shape[-1]))
    stop = stopwords.english()
    self.assertTrue(text.split())
    self.assertEmpty([w for w in text.split() if w in stop])

  def test_the_meta_names_the_list(self):
    self.assertIn(self.meta[task.STOP_WORDS_KEY], ('nltk', 'capjax'))

  def test_references_stay_raw_unless_cleaned(self):
    raw = pipeline.references(pipeline.open_split(self.config.dataset, 'test'))
    first = next(iter(raw.values()))[0]
    self.assertIn('a', first.lower().split())
    config = tiny_config(**{'dataset.stop_words': True,
                            'dataset.clean_references': True})
    cleaned = pipeline.references(pipeline.open_split(config.dataset, 'test'))
    self.assertEqual(next(iter(cleaned.values()))[0],
                     caption_cleaning.cleaner(stop_words=True,
                                              letter_words=False)(first))

  def test_rare_words_are_dropped_not_unk(self):
    config = tiny_config(**{'dataset.rare_words': 'drop',
                            'dataset.min_count': 400})
    batches, meta = task.open_data(config)
    tokens = next(iter(batches(0)))['tokens']
    unk_config = tiny_config(**{'dataset.min_count': 400})
    unk_tokens = next(iter(task.open_data(unk_config)[0](0)))['tokens']
    self.assertIn(vocab_lib.UNK_ID, unk_tokens)  # the test can fail
    self.assertNotIn(vocab_lib.UNK_ID, tokens)
    self.assertEqual(meta, task.open_data(unk_config)[1])


class GloveTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.dir = tempfile.mkdtemp(dir=DATA_DIR)
    config = tiny_config()
    batches, cls.meta = task.open_data(config)
    cls.batches = staticmethod(batches)
    cls.example = next(iter(cls.batches(0)))
    cls.vocab = task.vocab_of(cls.meta)
    words = cls.vocab.words
    dim = config.model.embed_dim
    rng = np.random.default_rng(0)
    # Three vocabulary words, one in upper case, one word not in it.
    cls.glove = {w: rng.normal(size=dim).astype(np.float32)
                 for w in (words[4], words[6], words[7])}
    cls.path = os.path.join(cls.dir, 'glove.test.16d.txt')
    write_glove(cls.path, [('zebra', rng.normal(size=dim)),
                           # glove.840B has words with spaces
                           (words[4] + ' x@y.com', rng.normal(size=dim)),
                           (words[4], cls.glove[words[4]]),
                           (words[6].upper(), cls.glove[words[6]]),
                           (words[7], cls.glove[words[7]])])
    init = functools.partial(task.init_params,
                             task.create_model(config, cls.meta))
    cls.random = jax.jit(init)(  # the random init `setup` starts from
        jax.random.split(jax.random.key(config.seed))[0], cls.example)
    cls.frozen = train.setup(
        tiny_config(**{'model.embedding_init': cls.path,
                       'model.embedding_trainable': False}),
        cls.meta, cls.example)
    cls.trained = train.setup(
        tiny_config(**{'model.embedding_init': cls.path}), cls.meta,
        cls.example)

  def test_rows_equal_the_file_and_the_rest_stays_random(self):
    model = self.frozen.model
    table = embedding(self.frozen.state.params, model)
    random_table = embedding(self.random, model)
    found = [self.vocab.word_id(w) for w in self.glove]
    for word, vector in self.glove.items():
      np.testing.assert_allclose(table[self.vocab.word_id(word)], vector,
                                 atol=1e-6)
    others = np.setdiff1d(np.arange(len(table)), found)
    np.testing.assert_allclose(table[others], random_table[others], atol=1e-7)
    self.assertFalse(np.allclose(table[found], random_table[found]))
    np.testing.assert_array_equal(
        embedding(self.trained.state.params, model), table)

  def test_frozen_embedding_stays_bit_identical_while_the_rest_moves(self):
    run = self.frozen
    step = jax.jit(run.step_fn)
    state = run.state
    batches = iter(self.batches(0))
    for _ in range(3):
      state, _ = step(state, next(batches), run.dropout_rng)
    np.testing.assert_array_equal(embedding(state.params, run.model),
                                  embedding(run.state.params, run.model))
    before = run.state.params['decoder']['output']['kernel']
    after = state.params['decoder']['output']['kernel']
    self.assertGreater(float(np.abs(after - before).max()), 0.0)
    # No optimizer moments are kept for the embedding (the trained run's
    # Adam keeps two).
    shape = embedding(run.state.params, run.model).shape

    def tables(opt_state):
      return [leaf for leaf in jax.tree.leaves(opt_state)
              if getattr(leaf, 'shape', None) == shape]

    self.assertEmpty(tables(state.opt_state))
    self.assertLen(tables(self.trained.state.opt_state), 2)

  def test_trained_embedding_gets_updates(self):
    run = self.trained
    params = run.state.params
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = jax.jit(run.tx.update)(grads, run.state.opt_state, params)
    self.assertGreater(float(np.abs(embedding(updates, run.model)).min()), 0)

  def test_a_file_of_another_width_is_a_one_line_error(self):
    path = os.path.join(self.dir, 'glove.8d.txt')
    write_glove(path, [('dog', np.ones(8))])
    config = tiny_config(**{'model.embedding_init': path})
    with self.assertRaisesRegex(ValueError, r'8 numbers .* has 16 '
                                r'\(model\.embed_dim\)') as caught:
      task.initial_values(config, self.meta, self.frozen.model, self.example)
    self.assertIn(path, str(caught.exception))
    self.assertNotIn('\n', str(caught.exception))

  def test_missing_and_damaged_files_are_one_line_errors(self):
    missing = tiny_config(**{'model.embedding_init': self.path + '.gone'})
    with self.assertRaisesRegex(config_checks.ConfigError, 'no such file'):
      config_checks.check(missing)
    path = os.path.join(self.dir, 'damaged.txt')
    with open(path, 'w') as f:
      f.write('dog ' + ' '.join(['0.5'] * 16) + '\n'
              + self.vocab.words[4] + ' 0.1 oops\n')
    with self.assertRaisesRegex(ValueError, 'line 2'):
      word_vectors.read_rows(path, self.vocab.words, 16)

  def test_every_captioner_with_an_embedding_has_its_table(self):
    for name in sorted(captioners.REGISTRY):
      config = tiny_config(**{'model.decoder': name})
      model = captioning.create(config, len(self.vocab))
      shapes = jax.eval_shape(model.init, jax.random.key(0),
                              self.example['image'][:1],
                              self.example['tokens'][:1, 0, :-1])
      decoder, module, leaf = model.word_embedding_path()
      self.assertEqual(shapes[decoder][module][leaf].shape[0],
                       len(self.vocab), name)

  def test_a_captioner_without_embedding_is_a_one_line_error(self):

    class NoWords:
      pass

    model = captioning.Captioner(encoder=None, decoder=NoWords())
    with self.assertRaisesRegex(ValueError, 'NoWords captioner has no word'):
      model.word_embedding_path()


class Seed000ConfigTest(absltest.TestCase):

  def test_the_paper_settings(self):
    config = flickr8k_seed000.get_config('manual_dir=/x')
    self.assertEqual(config.dataset.min_count, 10)
    self.assertEqual(config.dataset.rare_words, 'drop')
    self.assertTrue(config.dataset.stop_words)
    self.assertEqual(config.optimizer.learning_rate, 1e-3)
    self.assertEqual(config.model.decoder, 'merge')
    gru = flickr8k_seed000.get_config('manual_dir=/x,gru,inject,trained')
    self.assertEqual((gru.model.cell, gru.model.decoder), ('gru', 'show_tell'))
    self.assertTrue(gru.model.embedding_trainable)
    self.assertFalse(flickr8k_seed000.get_config(
        'manual_dir=/x,glove=/g.txt').model.embedding_trainable)

  def test_the_features_variant_sets_its_two_keys(self):
    config = flickr8k_seed000.get_config('features=/f')
    self.assertEqual(config.dataset.features, '/f')
    self.assertEqual(config.model.encoder.name, 'identity')


if __name__ == '__main__':
  absltest.main()
