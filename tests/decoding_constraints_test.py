"""Each decoding constraint bans what it says, in every decoder."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
from jax import numpy as jnp
import numpy as np

from capjax.decoding import beam as decoding_beam
from capjax.decoding import constraints as decoding_constraints
from capjax.decoding import sampling as decoding_sampling
from tests import decoding_toys

Constraints = decoding_constraints.Constraints
EOS = decoding_toys.EOS
PAD = 0
# Rule sets exercised by the search tests: each alone, then all together.
RULES = (
  ('suppress_unk', Constraints(suppress_unk=True)),
  ('banned_ids', Constraints(banned_ids=(0, 1))),
  ('no_repeat', Constraints(no_repeat=True)),
  ('no_repeat_any', Constraints(no_repeat_any=True)),
  ('block_trigrams', Constraints(block_trigrams=True)),
  ('no_end_after', Constraints(no_end_after=(4, 5))),
  ('min_len', Constraints(min_len=3)),
  (
    'all',
    Constraints(
      suppress_unk=True,
      banned_ids=(0, 1),
      no_repeat=True,
      block_trigrams=True,
      no_end_after=(4,),
      min_len=2,
    ),
  ),
)


def _rule_breaking_model(seed, batch, length, vocab):
  """A table model fond of UNK, PAD after PAD, the loop 4 5 4, EOS after it."""
  bias = np.zeros((vocab, vocab), np.float32)
  bias[:, decoding_toys.UNK] += 1.0
  bias[0, 0] += 2.0
  bias[4, 5] += 4.0
  bias[5, 4] += 4.0
  bias[4:6, EOS] += 2.0
  return decoding_toys.table_model(
    seed, batch, length, vocab, eos_bias=-1.5, bigram_bias=bias
  )


def _bans(rules, seq, step, vocab=9):
  return decoding_constraints.bans(
    rules, jnp.asarray([[seq]], jnp.int32), jnp.int32(step), vocab, EOS
  )


def _banned_words(rules, seq, step, vocab=9):
  words, _ = _bans(rules, seq, step, vocab)
  return set(np.flatnonzero(np.asarray(words[0, 0])).tolist())


def _eos_banned(rules, seq, step, vocab=9):
  _, eos = _bans(rules, seq, step, vocab)
  return bool(eos[0, 0])


def _violations(rules, seq, vocab):
  """The rules a returned caption breaks, checked plainly."""
  words = seq[: seq.index(EOS)] if EOS in seq else seq
  broken = [
    'word'
    for i, w in enumerate(words)
    if not decoding_toys.word_allowed(rules, tuple(words[:i]), w)
  ]
  if EOS in seq and not decoding_toys.eos_allowed(rules, tuple(words), vocab):
    broken.append('eos')
  return broken


class MaskTest(absltest.TestCase):
  def test_no_rule_no_mask(self):
    rules = Constraints()
    self.assertEqual(_bans(rules, [0, 0, 0], 0), (None, None))

  def test_suppress_unk_and_banned_ids(self):
    rules = Constraints(suppress_unk=True, banned_ids=(0, 1))
    self.assertEqual(_banned_words(rules, [5, 6, 0, 0], 2), {0, 1, 3})

  def test_no_repeat_bans_only_the_last_word(self):
    rules = Constraints(no_repeat=True)
    self.assertEqual(_banned_words(rules, [4, 5, 6, 0], 3), {6})
    self.assertEqual(_banned_words(rules, [0, 0, 0, 0], 0), set())

  def test_no_repeat_any_bans_every_word_already_emitted(self):
    rules = Constraints(no_repeat_any=True)
    self.assertEqual(_banned_words(rules, [4, 5, 4, 6, 0], 3), {4, 5})
    self.assertEqual(_banned_words(rules, [4, 5, 4, 6, 0], 4), {4, 5, 6})
    self.assertEqual(_banned_words(rules, [4, 5, 4, 6, 0], 0), set())
    # EOS is never banned by it: a tag set can always end.
    self.assertEqual(_banned_words(rules, [EOS, 0, 0, 0], 1), set())

  def test_block_trigrams_bans_the_word_completing_a_seen_trigram(self):
    rules = Constraints(block_trigrams=True)
    seq = [5, 6, 7, 5, 6, 0, 0]
    # After "5 6 7 5 6", the word 7 would repeat the trigram "5 6 7".
    self.assertEqual(_banned_words(rules, seq, 5), {7})
    # After "5 6 7 5", no trigram starts with "7 5".
    self.assertEqual(_banned_words(rules, seq, 4), set())
    # Two trigrams start with "8 8" in "8 8 4 8 8 5 8 8".
    self.assertEqual(
      _banned_words(rules, [8, 8, 4, 8, 8, 5, 8, 8, 0], 8), {4, 5}
    )

  def test_no_end_after_bans_eos_after_listed_words(self):
    rules = Constraints(no_end_after=(4, 5))
    self.assertTrue(_eos_banned(rules, [6, 4, 0], 2))
    self.assertFalse(_eos_banned(rules, [4, 6, 0], 2))
    self.assertFalse(_eos_banned(rules, [0, 0, 0], 0))

  def test_min_len_bans_eos_before_min_len_words(self):
    rules = Constraints(min_len=2)
    seq = [6, 7, 8, 0]
    self.assertEqual(
      [_eos_banned(rules, seq, step) for step in range(4)],
      [True, True, False, False],
    )

  def test_eos_is_allowed_when_no_word_is(self):
    rules = Constraints(banned_ids=(0, 1), no_repeat=True, min_len=3)
    # Vocabulary {PAD, BOS, EOS, 3}: after "3" only EOS is left.
    self.assertTrue(_eos_banned(rules, [0, 0, 0], 0, vocab=4))
    self.assertFalse(_eos_banned(rules, [3, 0, 0], 1, vocab=4))
    self.assertEqual(_banned_words(rules, [3, 0, 0], 1, vocab=4), {0, 1, 3})

  def test_eos_cannot_be_banned_outright(self):
    with self.assertRaisesRegex(ValueError, 'banned_ids contains EOS'):
      Constraints(banned_ids=(EOS,)).validate(EOS)

  def test_lists_from_a_config_become_tuples(self):
    rules = Constraints(banned_ids=[0, 1], no_end_after=[4])
    same = Constraints(banned_ids=(0, 1), no_end_after=(4,))
    self.assertEqual(rules, same)
    self.assertEqual(hash(rules), hash(same))


class SearchWithRulesTest(parameterized.TestCase):
  @parameterized.named_parameters(*RULES)
  def test_beam_search_equals_plain_reference(self, rules):
    vocab, max_len, beam = 6, 7, 3
    model = _rule_breaking_model(0, 2, max_len, vocab)
    seqs, scores = decoding_beam.beam_search(
      model.step_fn,
      model.init_carry,
      beam_size=beam,
      max_len=max_len,
      constraints=rules,
    )
    free, _ = decoding_beam.beam_search(
      model.step_fn, model.init_carry, beam_size=beam, max_len=max_len
    )
    for row in range(2):
      expected = decoding_toys.reference_beam_search(
        model.next_logp,
        row,
        vocab=vocab,
        beam_size=beam,
        max_len=max_len,
        num_return=beam,
        norm=decoding_toys.normalizer(0.0, 'gnmt'),
        constraints=rules,
      )
      self.assertEqual(
        seqs[row].tolist(),
        [decoding_toys.padded(seq, max_len) for seq, _ in expected],
      )
      np.testing.assert_allclose(
        scores[row], [s for _, s in expected], rtol=1e-5, atol=1e-5
      )
      for seq in seqs[row].tolist():
        self.assertEqual(_violations(rules, seq, vocab), [])
    # Without the rules some caption breaks them.
    broken = [
      _violations(rules, s, vocab) for s in free.reshape(-1, max_len).tolist()
    ]
    self.assertTrue(any(broken))

  @parameterized.named_parameters(*RULES)
  def test_greedy_equals_plain_reference(self, rules):
    vocab, max_len = 6, 7
    model = decoding_toys.rnn_model(1, 2, vocab)
    seqs, scores = decoding_sampling.greedy(
      model.step_fn, model.init_carry, max_len=max_len, constraints=rules
    )
    for row in range(2):
      tokens, score = decoding_toys.reference_greedy(
        model.next_logp, row, vocab=vocab, max_len=max_len,
        norm=decoding_toys.normalizer(0.0, 'gnmt'), constraints=rules)
      self.assertEqual(seqs[row, 0].tolist(),
                       decoding_toys.padded(tokens, max_len))
      np.testing.assert_allclose(scores[row, 0], score, rtol=1e-5)

  def test_rules_that_leave_no_word_end_the_caption(self):
    # Every word is banned and EOS too (min_len): EOS is allowed after all.
    rules = Constraints(banned_ids=(0, 1, 3, 4, 5), min_len=5)
    model = decoding_toys.table_model(3, 2, 4, 6)
    seqs, scores = decoding_sampling.greedy(
      model.step_fn, model.init_carry, max_len=4, constraints=rules
    )
    samples, _ = decoding_sampling.sample(
      model.step_fn,
      model.init_carry,
      jax.random.key(0),
      max_len=4,
      num_samples=5,
      constraints=rules,
    )
    ended = decoding_toys.padded((EOS,), 4)
    for row in range(2):
      self.assertEqual(seqs[row, 0].tolist(), ended)
      self.assertAlmostEqual(
        float(scores[row, 0]), model.next_logp(row, ())[EOS], places=5
      )
      self.assertEqual(samples[row].tolist(), [ended] * 5)

  def test_samples_never_break_the_rules(self):
    vocab, max_len = 6, 7
    rules = dict(RULES)['all']
    model = _rule_breaking_model(2, 2, max_len, vocab)
    seqs, _ = decoding_sampling.sample(
      model.step_fn,
      model.init_carry,
      jax.random.key(0),
      max_len=max_len,
      num_samples=300,
      constraints=rules,
    )
    free, _ = decoding_sampling.sample(
      model.step_fn,
      model.init_carry,
      jax.random.key(0),
      max_len=max_len,
      num_samples=300,
    )
    for seq in seqs.reshape(-1, max_len).tolist():
      self.assertEqual(_violations(rules, seq, vocab), [])
    broken = [
      _violations(rules, s, vocab) for s in free.reshape(-1, max_len).tolist()
    ]
    self.assertTrue(any(broken))


if __name__ == '__main__':
  absltest.main()
