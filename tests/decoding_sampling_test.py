"""Sampling draws from the model's distribution, filtered as asked."""

import collections

from absl.testing import absltest
from absl.testing import parameterized
import jax
import numpy as np
from scipy import stats

from capjax.decoding import sampling as decoding_sampling
from tests import decoding_toys

EOS = decoding_toys.EOS
PAD = decoding_toys.padded((), 1)[0]


def _critical(cells: int) -> float:
  """The chi-square statistic exceeded by chance once in 1000 draws."""
  return float(stats.chi2.ppf(0.999, cells - 1))


def _chi_square(counts: np.ndarray, probs: np.ndarray) -> float:
  expected = probs * counts.sum()
  return float(np.sum((counts - expected) ** 2 / expected))


def _probs(logp: np.ndarray, temperature: float = 1.0) -> np.ndarray:
  weights = np.exp(logp / temperature - np.max(logp / temperature))
  return weights / weights.sum()


class SampleTest(parameterized.TestCase):
  def _pairs(self, model, seqs):
    """Joint frequencies of (first, second) token and their probabilities."""
    vocab = model.vocab
    cells = [(EOS, PAD)] + [
      (a, b) for a in range(vocab) if a != EOS for b in range(vocab)
    ]
    first = np.exp(model.next_logp(0, ()))
    probs = np.array(
      [
        first[a] if a == EOS else first[a] * np.exp(model.next_logp(0, (a,)))[b]
        for a, b in cells
      ]
    )
    found = collections.Counter(map(tuple, np.asarray(seqs[0]).tolist()))
    self.assertEqual(sum(found[c] for c in cells), seqs.shape[1])
    return np.array([found[c] for c in cells]), probs

  def test_two_step_captions_follow_the_model(self):
    model = decoding_toys.table_model(0, 1, 2, 5)
    seqs, _ = decoding_sampling.sample(
      model.step_fn,
      model.init_carry,
      jax.random.key(0),
      max_len=2,
      num_samples=20000,
    )
    counts, probs = self._pairs(model, seqs)
    self.assertLess(_chi_square(counts, probs), _critical(21))
    # The same counts against another model's probabilities fail the test.
    other, _ = self._pairs(decoding_toys.table_model(1, 1, 2, 5), seqs)
    self.assertGreater(_chi_square(counts, other), _critical(21))

  def test_temperature_sharpens_the_first_token(self):
    model = decoding_toys.table_model(2, 1, 1, 5)
    seqs, _ = decoding_sampling.sample(
      model.step_fn,
      model.init_carry,
      jax.random.key(1),
      max_len=1,
      num_samples=20000,
      temperature=0.5,
    )
    counts = np.bincount(np.asarray(seqs[0, :, 0]), minlength=5)
    logp = model.next_logp(0, ())
    self.assertLess(_chi_square(counts, _probs(logp, 0.5)), _critical(5))
    self.assertGreater(_chi_square(counts, _probs(logp, 1.0)), _critical(5))

  @parameterized.named_parameters(
    ('top_k', dict(top_k=3)),
    ('top_p', dict(top_p=0.6)),
    ('both_tempered', dict(top_k=4, top_p=0.8, temperature=1.5)),
  )
  def test_filtered_tokens_are_never_emitted(self, filters):
    vocab, max_len = 12, 3
    model = decoding_toys.table_model(3, 2, max_len, vocab)
    seqs, _ = decoding_sampling.sample(
      model.step_fn,
      model.init_carry,
      jax.random.key(2),
      max_len=max_len,
      num_samples=3000,
      **filters,
    )
    temperature = filters.get('temperature', 1.0)
    firsts = []
    for row in range(2):
      kept_first = None
      for seq in np.asarray(seqs[row]).tolist():
        for position, token in enumerate(seq):
          prefix = tuple(seq[:position])
          if EOS in prefix:
            self.assertEqual(token, PAD)
            continue
          kept = _kept_tokens(
            model.next_logp(row, prefix) / temperature,
            filters.get('top_k', 0),
            filters.get('top_p', 1.0),
          )
          self.assertIn(token, kept)
          if position == 0:
            kept_first = kept
      firsts.append((np.asarray(seqs[row, :, 0]), kept_first))
    # The kept first tokens appear as often as their renormalised mass says.
    tokens, kept = firsts[0]
    kept = sorted(kept)
    self.assertGreater(len(kept), 1)
    logp = model.next_logp(0, ())[kept] / temperature
    counts = np.array([np.sum(tokens == k) for k in kept])
    self.assertLess(_chi_square(counts, _probs(logp)), _critical(len(kept)))

  def test_scores_are_the_model_log_probs_of_the_caption(self):
    vocab, max_len = 6, 4
    model = decoding_toys.rnn_model(4, 2, vocab)
    seqs, scores = decoding_sampling.sample(
      model.step_fn,
      model.init_carry,
      jax.random.key(3),
      max_len=max_len,
      num_samples=50,
      temperature=0.8,
      top_k=4,
      length_penalty=0.7,
    )
    norm = decoding_toys.normalizer(0.7, 'gnmt')
    ended = 0
    for row in range(2):
      for seq, score in zip(
        np.asarray(seqs[row]).tolist(), scores[row], strict=True
      ):
        length = seq.index(EOS) + 1 if EOS in seq else max_len
        ended += EOS in seq
        self.assertEqual(seq[length:], [PAD] * (max_len - length))
        total = sum(
          model.next_logp(row, tuple(seq[:i]))[seq[i]] for i in range(length)
        )
        np.testing.assert_allclose(score, total / norm(length), rtol=1e-4)
    self.assertBetween(ended, 1, 99)

  def test_same_key_same_captions_other_key_other_captions(self):
    model = decoding_toys.table_model(5, 2, 4, 7)

    def draw(seed):
      return decoding_sampling.sample(
        model.step_fn,
        model.init_carry,
        jax.random.key(seed),
        max_len=4,
        num_samples=8,
      )[0]

    np.testing.assert_array_equal(draw(0), draw(0))
    self.assertFalse(np.array_equal(draw(0), draw(1)))

  def test_new_params_and_key_do_not_retrace(self):
    traces = []

    def step(table, tokens, carry):
      traces.append(1)
      return decoding_toys._table_step(table, tokens, carry)

    for seed in range(3):
      model = decoding_toys.table_model(seed, 2, 3, 6)
      decoding_sampling.sample(
        jax.tree_util.Partial(step, *model.step_fn.args),
        model.init_carry,
        jax.random.key(seed),
        max_len=3,
        num_samples=2,
        temperature=0.5 + seed,
      )
      if seed == 0:
        traced_once = len(traces)
    self.assertLen(traces, traced_once)

  def test_bad_settings_are_named(self):
    model = decoding_toys.table_model(0, 1, 3, 5)
    for settings, message in [
      (dict(temperature=0.0), 'temperature'),
      (dict(top_p=0.0), 'top_p'),
      (dict(top_k=-1), 'top_k'),
      (dict(num_samples=0), 'num_samples'),
    ]:
      with self.assertRaisesRegex(ValueError, message):
        decoding_sampling.sample(
          model.step_fn,
          model.init_carry,
          jax.random.key(0),
          max_len=3,
          **settings,
        )


def _kept_tokens(logits: np.ndarray, top_k: int, top_p: float) -> set[int]:
  """The tokens top-k then top-p keep, written plainly."""
  order = sorted(range(len(logits)), key=lambda v: -logits[v])
  if top_k:
    order = [v for v in order if logits[v] >= logits[order[top_k - 1]]]
  probs = _probs(logits[order])
  kept, mass = [], 0.0
  for v, p in zip(order, probs, strict=True):
    if mass >= top_p:
      break
    kept.append(v)
    mass += p
  return set(kept)


if __name__ == '__main__':
  absltest.main()
