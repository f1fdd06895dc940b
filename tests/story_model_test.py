"""The character story model: priming, decoding, carried state, training."""

import importlib.util
import os
import tempfile

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np
import optax

from capjax import checkpointing
from capjax import stories
from capjax.data import text_corpus
from capjax.models import char_lm
from capjax.tasks import language_model as task

CONFIGS = os.path.join(os.path.dirname(__file__), '..', 'configs', 'story')
SHARED = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data')
if not os.path.isdir(SHARED):
  SHARED = '/work/shared/data'
TEXT = ('#dog A black dog runs on the grass. A dog jumps over a log.\n'
        '#beach Two children play on the beach. A girl runs in the sand.\n')


def _config(name, arg):
  spec = importlib.util.spec_from_file_location(
      f'story_{name}', os.path.join(CONFIGS, f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


class StoryModelTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._tmp = tempfile.TemporaryDirectory()
    corpus = os.path.join(cls._tmp.name, 'corpus')
    os.makedirs(corpus)
    for i in range(3):  # a folder of .txt files, read in sorted order
      with open(os.path.join(corpus, f'part{i}.txt'), 'w') as f:
        f.write(TEXT * 6)
    cls.config = _config('text', f'tiny,corpus={corpus}')
    batches, cls.meta = task.open_data(cls.config)
    cls.batches = staticmethod(batches)
    cls.model = task.create_model(cls.config, cls.meta)
    cls.chars = task.vocab_of(cls.meta)
    cls.params = jax.jit(lambda r, b: task.init_params(cls.model, r, b))(
        jax.random.key(0), next(batches(0)))

  @classmethod
  def tearDownClass(cls):
    cls._tmp.cleanup()
    super().tearDownClass()

  def test_bits_per_char_progress_ends_at_predicted_chars(self):
    _, heldout_ids, _, _ = task.open_corpus(self.config)

    class Count:
      done = 0

      def update(self, count):
        self.done += count

    for chars, streams, window in ((len(heldout_ids), 4, 64), (203, 8, 7)):
      ids, count = heldout_ids[:chars], Count()
      stories.bits_per_char(self.model, self.params, ids, streams=streams,
                            window=window, progress=count)
      self.assertEqual(count.done, stories.predicted_chars(len(ids), streams))

  def test_priming_gives_the_state_of_feeding_one_char_at_a_time(self):
    seeds = ['#dog A bl', '#b', 'x']  # 'x' is not in the corpus: UNK
    writer = stories.StoryWriter(self.model, self.chars, length=4,
                                 max_seed_len=12)
    ids, lengths = writer.encode_seeds(seeds)
    variables = {'params': self.params}
    carry, logits = jax.jit(lambda v, i, n: self.model.apply(
        v, i, n, method='prime'))(variables, ids, lengths)
    step = jax.jit(lambda v, c, t: self.model.apply(v, c, t, method='step'))
    for row, seed in enumerate(seeds):
      state = self.model.apply(variables, (1,), method='init_carry')
      for char_id in text_corpus.encode(seed, self.chars):
        last, state = step(variables, state, jnp.asarray([char_id]))
      for primed, stepped in zip(jax.tree.leaves(carry),
                                 jax.tree.leaves(state)):
        np.testing.assert_allclose(primed[row], stepped[0], atol=1e-6)
      np.testing.assert_allclose(logits[row], last[0], atol=1e-5)

  def test_zero_temperature_sampling_is_greedy(self):
    writer = stories.StoryWriter(self.model, self.chars, length=24)
    seeds = ['#dog ', '#beach Two', 'A']
    greedy = writer.generate_ids(self.params, seeds, jax.random.key(0),
                                 greedy=True)
    cold = writer.generate_ids(self.params, seeds, jax.random.key(3),
                               temperature=1e-6)
    warm = writer.generate_ids(self.params, seeds, jax.random.key(3),
                               temperature=2.0)
    np.testing.assert_array_equal(cold, greedy)
    self.assertFalse(np.array_equal(warm, greedy))
    # Exactly `length` ordinary characters: no EOS, PAD, BOS or UNK.
    self.assertTrue(np.all(np.asarray(greedy) >= 4))
    # The first character follows the seed: the primed logits' argmax.
    ids, lengths = writer.encode_seeds(seeds)
    _, logits = self.model.apply({'params': self.params}, ids, lengths,
                                 method='prime')
    masked = np.asarray(logits).copy()
    masked[:, :4] = -np.inf
    np.testing.assert_array_equal(greedy[:, 0], masked.argmax(-1))

  def test_carried_state_equals_one_long_window(self):
    ids = text_corpus.encode(TEXT * 4, self.chars)
    batches = text_corpus.stream_batches(ids, window=16, batch_size=2)
    first, second = next(batches), next(batches)
    self.assertEqual(first['reset'].tolist(), [1.0, 1.0])
    np.testing.assert_array_equal(first['tokens'][:, -1],
                                  second['tokens'][:, 0])
    state = task.initial_state(self.model, self.params, 2)
    with_state = jax.jit(
        lambda p, b, s: task.totals_with_state(self.model, p, b, s))
    sums1, state = with_state(self.params, first, state)
    sums2, _ = with_state(self.params, second, state)
    joined = {'tokens': np.concatenate(
        [first['tokens'], second['tokens'][:, 1:]], axis=1)}
    whole = jax.jit(lambda p, b: task.totals(self.model, p, b, train=False))(
        self.params, joined)
    np.testing.assert_allclose(sums1['nll_sum'] + sums2['nll_sum'],
                               whole['nll_sum'], rtol=1e-5)

  def test_windows_are_a_pure_function_of_seed_and_step(self):
    ids = np.arange(1000, dtype=np.int32)
    run = text_corpus.window_batches(ids, window=10, batch_size=8, seed=3)
    steps = [next(run)['tokens'] for _ in range(30)]  # 240 > 99 windows
    resumed = next(text_corpus.window_batches(
        ids, window=10, batch_size=8, seed=3, start_step=17))['tokens']
    np.testing.assert_array_equal(resumed, steps[17])
    half = next(text_corpus.window_batches(
        ids, window=10, batch_size=8, seed=3, start_step=17, process_index=1,
        process_count=2))['tokens']
    np.testing.assert_array_equal(half, steps[17][4:])
    epoch = np.concatenate(steps)[:99, 0] // 10  # first epoch: each once
    self.assertEqual(sorted(epoch.tolist()), list(range(99)))

  def test_rmsprop_steps_lower_held_out_bits_below_the_unigram(self):
    tx = optax.rmsprop(1e-2)

    @jax.jit
    def step(params, opt_state, batch):
      def loss_fn(p):
        sums = task.totals(self.model, p, batch, train=True)
        return task.loss(sums, sums)
      value, grads = jax.value_and_grad(loss_fn)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), opt_state, value

    train_ids, heldout_ids, _, _ = task.open_corpus(self.config)
    before = stories.bits_per_char(self.model, self.params, heldout_ids,
                                   streams=4, window=64)
    params, opt_state = self.params, tx.init(self.params)
    for _, batch in zip(range(60), self.batches(0)):
      params, opt_state, _ = step(params, opt_state, batch)
    after = stories.bits_per_char(self.model, params, heldout_ids,
                                  streams=4, window=64)
    unigram = text_corpus.unigram_bits(train_ids, heldout_ids,
                                       len(self.chars))
    self.assertLess(after, unigram)
    self.assertLess(unigram, before)
    # The checkpoint format the loop writes loads back as a story model.
    workdir = os.path.join(self._tmp.name, 'workdir')
    saver = checkpointing.Checkpointer(workdir, keep=1)
    saver.save(60, {'params': params, 'step': 60}, self.config, self.meta)
    saver.wait()
    saver.close()
    _, chars, model, loaded = stories.load_workdir(workdir)
    self.assertEqual(chars, self.chars)
    self.assertEqual(model, self.model)
    story, = stories.StoryWriter(model, chars, length=30).write(
        loaded, ['#dog '], jax.random.key(0), greedy=True)
    self.assertLen(story, 30)

  def test_flickr8k_paragraphs_start_with_their_hashtag(self):
    paragraphs = text_corpus.flickr8k_paragraphs(
        os.path.join(SHARED, 'flickr8k_1k'), 'validation')
    self.assertLen(paragraphs, 113)
    for text in paragraphs:
      self.assertRegex(text, r'^#[a-z]+ [A-Z]')
      self.assertNotIn(' .', text)
    self.assertEqual(text_corpus.clean_caption('a dog \'s ball .'),
                     "A dog's ball.")

  def test_corpus_errors_are_named(self):
    with self.assertRaisesRegex(FileNotFoundError, 'No corpus at /nowhere'):
      text_corpus.read_text('/nowhere')
    model = char_lm.CharLM(vocab_size=8)
    with self.assertRaisesRegex(ValueError, 'too few'):
      stories.bits_per_char(model, {}, np.zeros(3, np.int32), streams=4)


if __name__ == '__main__':
  absltest.main()
