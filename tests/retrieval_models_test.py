"""Retrieval models and losses against plainly written loops."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from capjax.data import vocab as vocab_lib
from capjax.models.retrieval import alignment
from capjax.models.retrieval import common_space
from capjax.models.retrieval import ranking

VOCAB = 13


def _tokens(lengths, time=7):
  """[BOS, words..., EOS, PAD...] rows with the given word counts."""
  rng = np.random.default_rng(0)
  rows = np.zeros((len(lengths), time), np.int32)
  for n, length in enumerate(lengths):
    rows[n, 0] = vocab_lib.BOS_ID
    rows[n, 1:length + 1] = rng.integers(vocab_lib.UNK_ID, VOCAB, length)
    rows[n, length + 1] = vocab_lib.EOS_ID
  return jnp.asarray(rows)


def _loop_loss(s, kind, margin, scale, same):
  """The three losses written as plain loops over queries."""
  n = len(s)
  total = 0.0
  for q in range(n):
    for direction in ('i2t', 't2i'):
      row = s[q] if direction == 'i2t' else s[:, q]
      negatives = [j for j in range(n) if j != q and not same[q, j]]
      if kind == 'xent':
        kept = [q] + negatives
        logits = np.array([scale * row[j] for j in kept])
        total += np.log(np.exp(logits).sum()) - logits[0]
      else:
        hinges = [max(0.0, margin - row[q] + row[j]) for j in negatives]
        total += sum(hinges) if kind == 'hinge' else max(hinges + [0.0])
  return total


class RankingTest(parameterized.TestCase):

  @parameterized.parameters('xent', 'hinge', 'hardest')
  def test_loss_matches_a_loop(self, kind):
    s = np.random.default_rng(1).normal(size=(5, 5)).astype(np.float32)
    same = np.zeros((5, 5), bool)
    same[1, 3] = same[3, 1] = True  # two captions of one image
    loss_sum, queries = ranking.ranking_loss(
        jnp.asarray(s), kind, margin=0.3, logit_scale=2.0,
        same=jnp.asarray(same))
    self.assertEqual(float(queries), 10.0)
    np.testing.assert_allclose(
        float(loss_sum), _loop_loss(s, kind, 0.3, 2.0, same), rtol=1e-5)

  def test_unknown_loss_names_the_config_key(self):
    with self.assertRaisesRegex(ValueError, 'retrieval.loss'):
      ranking.Objective(kind='triplet')

  def test_in_batch_hits_count_both_directions(self):
    s = jnp.asarray([[1.0, 0.0], [2.0, 0.5]])  # image 1 prefers text 0
    # i2t: image 0 right, image 1 wrong; t2i: text 0 -> image 1 wrong,
    # text 1 -> image 1 right.
    self.assertEqual(float(ranking.in_batch_hits(s)), 2.0)


class AlignmentTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model = alignment.Alignment(VOCAB, embed_dim=6, word_dim=5,
                                    hidden_dim=4)
    features = (jnp.ones((2, 3)), jnp.ones((2, 4, 3)))
    cls.tokens = _tokens([3, 5, 1])
    cls.params = jax.jit(cls.model.init)(jax.random.key(0), features,
                                         cls.tokens)
    cls.features = (jax.random.normal(jax.random.key(1), (2, 3)),
                    jax.random.normal(jax.random.key(2), (2, 4, 3)))
    embed = jax.jit(lambda p, f, t: cls.model.apply(p, f, t))
    cls.regions, cls.words = jax.tree.map(
        np.asarray, embed(cls.params, cls.features, cls.tokens))

  def test_brnn_matches_the_papers_equations(self):
    p = jax.tree.map(np.asarray, self.params['params'])
    words = self.words
    relu = lambda x: np.maximum(x, 0.0)
    for n, row in enumerate(np.asarray(self.tokens)):
      ids = [t for t in row if t >= vocab_lib.UNK_ID]
      x = p['words']['embedding'][ids]
      e = relu(x @ p['word_input']['kernel'] + p['word_input']['bias'])
      h_f, h_b = np.zeros_like(e), np.zeros_like(e)
      for t in range(len(ids)):
        prev = h_f[t - 1] if t else np.zeros_like(e[0])
        h_f[t] = relu(e[t] + prev @ p['w_forward'] + p['b_forward'])
      for t in reversed(range(len(ids))):
        nxt = h_b[t + 1] if t + 1 < len(ids) else np.zeros_like(e[0])
        h_b[t] = relu(e[t] + nxt @ p['w_backward'] + p['b_backward'])
      s = relu((h_f + h_b) @ p['word_output']['kernel']
               + p['word_output']['bias'])
      np.testing.assert_allclose(words[n, 1:len(ids) + 1], s, rtol=1e-5,
                                 atol=1e-6)
      self.assertEqual(np.abs(words[n, len(ids) + 1:]).sum(), 0.0)
      self.assertEqual(np.abs(words[n, 0]).sum(), 0.0)  # BOS

  def test_score_is_sum_over_words_of_best_region(self):
    regions, words = self.regions, self.words
    self.assertEqual(regions.shape, (2, 5, 6))  # 4 cells + the image
    scores = np.asarray(alignment.similarity(regions, words))
    for k in range(2):
      for l, row in enumerate(np.asarray(self.tokens)):
        real = [t for t, token in enumerate(row)
                if token >= vocab_lib.UNK_ID]
        want = sum(max(regions[k, i] @ words[l, t] for i in range(5))
                   for t in real)
        np.testing.assert_allclose(scores[k, l], want, rtol=1e-5)


class CommonSpaceTest(parameterized.TestCase):

  def _model(self, encoder, layers=1, pooling='last'):
    model = common_space.CommonSpace(
        VOCAB, embed_dim=6, word_dim=5, hidden_dim=4, text_encoder=encoder,
        num_layers=layers, pooling=pooling)
    features = (jnp.ones((2, 3)), jnp.ones((2, 1, 3)))
    params = jax.jit(model.init)(jax.random.key(0), features, _tokens([1, 2]))
    return model, params

  def test_bilstm_last_states_match_a_loop_over_real_words(self):
    model, params = self._model('bilstm')
    tokens = _tokens([3, 5, 1])
    p = jax.tree.map(np.asarray, params['params'])
    got = jax.jit(lambda t: model.apply(params, t, method='embed_texts'))(
        tokens)
    sigmoid = lambda x: 1.0 / (1.0 + np.exp(-x))
    for n, row in enumerate(np.asarray(tokens)):
      x = p['words']['embedding'][row[row >= vocab_lib.UNK_ID]]
      last = []
      for direction, xs in ((0, x), (1, x[::-1])):
        cp = p[f'layers_0_{direction}']
        c, h = np.zeros(4), np.zeros(4)
        for x_t in xs:  # gates (i, f, g, o)
          gates = (x_t @ cp['input']['kernel'] + cp['input']['bias']
                   + h @ cp['recurrent'])
          i, f, g, o = np.split(gates, 4)
          c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
          h = sigmoid(o) * np.tanh(c)
        last.append(h)
      v = np.concatenate(last) @ p['text_proj']['kernel'] + p['text_proj'][
          'bias']
      np.testing.assert_allclose(got[n], v / np.linalg.norm(v), rtol=1e-4,
                                 atol=1e-5)

  @parameterized.parameters(('bilstm', 2, 'mean'))
  def test_padding_changes_nothing_and_vectors_are_unit(self, encoder,
                                                        layers, pooling):
    model, params = self._model(encoder, layers, pooling)
    short = _tokens([2, 4], time=6)
    long = jnp.pad(short, ((0, 0), (0, 5)))
    embed = jax.jit(lambda t: model.apply(params, t, method='embed_texts'))
    a, b = embed(short), embed(long)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jnp.linalg.norm(a, axis=-1), 1.0, rtol=1e-4)

  def test_bfloat16_embeddings_agree_with_float32(self):
    tokens = _tokens([3, 5, 1])
    features = (jax.random.normal(jax.random.key(1), (3, 3)),
                jax.random.normal(jax.random.key(2), (3, 4, 3)))
    for module in (common_space.CommonSpace, alignment.Alignment):
      params = module(VOCAB, embed_dim=6, word_dim=5, hidden_dim=4).init(
          jax.random.key(0), features, tokens)
      out = {}
      for dtype in ('float32', 'bfloat16'):
        model = module(VOCAB, embed_dim=6, word_dim=5, hidden_dim=4,
                       dtype=dtype)
        out[dtype] = jax.jit(model.apply)(params, features, tokens)
      for got, want in zip(jax.tree.leaves(out['bfloat16']),
                           jax.tree.leaves(out['float32'])):
        self.assertEqual(got.dtype, jnp.float32)
        error = float(jnp.abs(got - want).max() / jnp.abs(want).max())
        self.assertLess(error, 3e-2, module.__name__)
        self.assertGreater(error, 1e-5, module.__name__)  # bf16 was used

  def test_reverse_within_length_is_an_involution(self):
    x = jnp.arange(12).reshape(2, 6)
    lengths = jnp.asarray([4, 0])
    once = common_space.reverse_within_length(x, lengths)
    np.testing.assert_array_equal(once[0], [3, 2, 1, 0, 4, 5])
    np.testing.assert_array_equal(once[1], x[1])
    np.testing.assert_array_equal(
        common_space.reverse_within_length(once, lengths), x)


if __name__ == '__main__':
  absltest.main()
