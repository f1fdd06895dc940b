"""Consensus reranking against a plainly written Python loop (Counters of
n-gram tuples, sorted lists), on random captions with repeated words."""

import collections
import math

from absl.testing import absltest
import numpy as np

from capjax.metrics import consensus

VOCAB, QUERIES, HYPS, TRAIN, R, T, K, M = 7, 5, 4, 12, 3, 6, 3, 5


def _grams(words, n):
  return collections.Counter(tuple(words[i:i + n])
                             for i in range(len(words) - n + 1))


def _words(row):
  return [int(w) for w in row if w > 0]


def _bleu_f(hyp, ref):
  fs = []
  for n in range(1, 5):
    h, r = _grams(hyp, n), _grams(ref, n)
    c = sum(min(v, r[g]) for g, v in h.items())
    if c == 0:
      fs.append(0.0)
      continue
    p, rec = c / sum(h.values()), c / sum(r.values())
    fs.append(2 * p * rec / (p + rec))
  return sum(fs) / 4


def _cider(hyp, ref, df, num_docs):
  def vec(words, n):
    return {g: c * (math.log(num_docs) - math.log(max(1.0, df[g])))
            for g, c in _grams(words, n).items()}

  vals = []
  for n in range(1, 5):
    vh, vr = vec(hyp, n), vec(ref, n)
    nh = math.sqrt(sum(v * v for v in vh.values()))
    nr = math.sqrt(sum(v * v for v in vr.values()))
    val = sum(min(v, vr.get(g, 0.0)) * vr.get(g, 0.0) for g, v in vh.items())
    if nh and nr:
      val /= nh * nr
    delta = max(len(hyp) - 1, 0) - max(len(ref) - 1, 0)
    vals.append(val * math.exp(-delta ** 2 / (2 * 6.0 ** 2)))
  return 10 * sum(vals) / 4


def _random_captions(rng, shape):
  tokens = rng.integers(4, VOCAB, shape + (T,))
  lengths = rng.integers(1, T + 1, shape)
  tokens[np.arange(T) >= lengths[..., None]] = 0
  return tokens.astype(np.int32)


class ConsensusTest(absltest.TestCase):

  def test_rerank_matches_a_python_loop(self):
    rng = np.random.default_rng(0)
    hyps = _random_captions(rng, (QUERIES, HYPS))
    hyps[0, 2] = hyps[0, 1]  # a tie: the higher beam rank must win
    train_caps = _random_captions(rng, (TRAIN, R))
    train_feat = rng.normal(size=(TRAIN, 3)).astype(np.float32)
    query_feat = rng.normal(size=(QUERIES, 3)).astype(np.float32)
    df_table = consensus.DocumentFrequencies.build(train_caps, VOCAB)
    df = collections.Counter()
    for image in train_caps:
      df.update(set().union(*(set(_grams(_words(c), n)) for c in image
                              for n in range(1, 5))))

    neighbours = np.asarray(consensus.nearest(query_feat, train_feat, K))
    neighbour_caps = train_caps[neighbours].reshape(QUERIES, K * R, T)
    result = consensus.rerank(hyps, neighbour_caps, m_bleu=M, m_cider=M - 1,
                              hyp_idf=df_table.idf(hyps),
                              ref_idf=df_table.idf(neighbour_caps))
    for kind, m in (('bleu', M), ('cider', M - 1)):
      choice, scores = result[kind]
      for q in range(QUERIES):
        order = sorted(range(TRAIN), key=lambda i: (
            float(np.sum((query_feat[q] - train_feat[i]) ** 2)), i))[:K]
        self.assertEqual(sorted(order), sorted(neighbours[q].tolist()))
        refs = [_words(c) for i in order for c in train_caps[i]]
        expected = []
        for h in hyps[q]:
          sims = [(_bleu_f(_words(h), r) if kind == 'bleu'
                   else _cider(_words(h), r, df, TRAIN)) for r in refs]
          expected.append(sum(sorted(sims, reverse=True)[:m]))
        np.testing.assert_allclose(scores[q], expected, rtol=1e-4,
                                   atol=1e-5, err_msg=kind)
        best = max(range(HYPS), key=lambda j: (expected[j], -j))
        if abs(sorted(expected)[-1] - sorted(expected)[-2]) > 1e-4:
          self.assertEqual(int(choice[q]), best)
      self.assertIn(int(choice[0]), (0, 1, 3))  # never 2, the later tie

  def test_oracle_uses_the_own_references(self):
    # Shapes as in the test above (padded to K * R references, as the
    # evaluator does), so the compiled program is shared.
    hyps = np.zeros((QUERIES, HYPS, T), np.int32)
    hyps[0, :2, :3] = [[4, 5, 6], [4, 5, 0]]
    own = np.zeros((QUERIES, R, T), np.int32)
    own[0, :2, :2] = [4, 5]
    others = np.zeros((2, R, T), np.int32)
    others[..., 0] = 6
    df = consensus.DocumentFrequencies.build(
        np.concatenate([own[:1], others]), VOCAB)
    result = consensus.oracle(hyps, own, hyp_idf=df.idf(hyps),
                              ref_idf=df.idf(own), pad_to=K * R)
    choice, scores = result['bleu']
    self.assertEqual(int(choice[0]), 1)  # the exact copy of the references
    # F_1 = F_2 = 1, F_3 = F_4 = 0 against each of the 2 references.
    np.testing.assert_allclose(scores[0, 1], 2 * (1 + 1) / 4, rtol=1e-6)
    self.assertEqual(int(result['cider'][0][0]), 1)

if __name__ == '__main__':
  absltest.main()
