"""Beam search, diverse beam search and greedy against known answers."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
from jax import numpy as jnp
import numpy as np

from capjax.decoding import beam as decoding_beam
from capjax.decoding import sampling as decoding_sampling
from capjax.decoding import constraints as decoding_constraints
from capjax.decoding import top_k as decoding_top_k
from tests import decoding_toys

# (name, length_penalty, length_norm): no normalisation, GNMT, the plain
# average, and a decreasing GNMT normaliser (alpha < 0).
LENGTH_MODES = (
  ('sum', 0.0, 'gnmt'),
  ('gnmt', 0.7, 'gnmt'),
  ('average', 1.0, 'power'),
  ('gnmt_negative', -0.8, 'gnmt'),
)
MODELS = ('table', 'rnn')
# Host calls made by `_counting_step` while a compiled loop runs.
STEPS_RUN = []


def _counting_step(table, tokens, carry):
  """The table model's step, counting its runs (test only: a host call)."""
  jax.debug.callback(lambda: STEPS_RUN.append(1))
  return decoding_toys._table_step(table, tokens, carry)


def _model(kind, seed, batch, vocab, length, **kwargs):
  if kind == 'table':
    return decoding_toys.table_model(seed, batch, length, vocab, **kwargs)
  return decoding_toys.rnn_model(seed, batch, vocab, **kwargs)


def _cases():
  for model in MODELS:
    for name, alpha, norm in LENGTH_MODES:
      yield dict(
        testcase_name=f'{model}_{name}',
        kind=model,
        length_penalty=alpha,
        length_norm=norm,
      )


class BeamSearchTest(parameterized.TestCase):
  def assert_matches(self, seqs, scores, expected, max_len):
    """seqs [N, T] and scores [N] equal a reference list (seq, score)."""
    self.assertEqual(
      np.asarray(seqs).tolist(),
      [decoding_toys.padded(seq, max_len) for seq, _ in expected],
    )
    np.testing.assert_allclose(
      scores, [score for _, score in expected], rtol=1e-5, atol=1e-5
    )

  @parameterized.named_parameters(*_cases())
  def test_beam_as_wide_as_the_search_space_is_exhaustive(
    self, kind, length_penalty, length_norm
  ):
    vocab, max_len, num_return = 5, 4, 20
    model = _model(kind, 0, 2, vocab, max_len)
    # 4 non-EOS words: at most 4 ** 3 live prefixes before the last step.
    seqs, scores = decoding_beam.beam_search(
      model.step_fn,
      model.init_carry,
      beam_size=64,
      max_len=max_len,
      num_return=num_return,
      length_penalty=length_penalty,
      length_norm=length_norm,
    )
    norm = decoding_toys.normalizer(length_penalty, length_norm)
    for row in range(2):
      expected = decoding_toys.exhaustive(
        model.next_logp, row, vocab=vocab, max_len=max_len, norm=norm
      )
      self.assert_matches(
        seqs[row], scores[row], expected[:num_return], max_len
      )

  @parameterized.named_parameters(*_cases())
  def test_narrow_beam_equals_plain_reference(
    self, kind, length_penalty, length_norm
  ):
    vocab, max_len, beam = 7, 5, 3
    model = _model(kind, 1, 3, vocab, max_len)
    seqs, scores = decoding_beam.beam_search(
      model.step_fn,
      model.init_carry,
      beam_size=beam,
      max_len=max_len,
      length_penalty=length_penalty,
      length_norm=length_norm,
    )
    norm = decoding_toys.normalizer(length_penalty, length_norm)
    for row in range(3):
      expected = decoding_toys.reference_beam_search(
        model.next_logp,
        row,
        vocab=vocab,
        beam_size=beam,
        max_len=max_len,
        num_return=beam,
        norm=norm,
      )
      self.assert_matches(seqs[row], scores[row], expected, max_len)

  @parameterized.named_parameters(
    (name, alpha, norm) for name, alpha, norm in LENGTH_MODES
  )
  def test_early_stop_is_exact_and_stops_early(self, length_penalty, norm):
    vocab, max_len, beam = 6, 12, 2
    model = decoding_toys.table_model(2, 3, max_len, vocab, eos_bias=4.0)
    STEPS_RUN.clear()
    step_fn = jax.tree_util.Partial(_counting_step, *model.step_fn.args)
    seqs, scores = decoding_beam.beam_search(
      step_fn,
      model.init_carry,
      beam_size=beam,
      max_len=max_len,
      length_penalty=length_penalty,
      length_norm=norm,
    )
    jax.block_until_ready(seqs)
    self.assertLess(len(STEPS_RUN), max_len)
    STEPS_RUN.clear()
    full_seqs, full_scores = decoding_beam.beam_search(
      step_fn,
      model.init_carry,
      beam_size=beam,
      max_len=max_len,
      length_penalty=length_penalty,
      length_norm=norm,
      early_stop=False,
    )
    jax.block_until_ready(full_seqs)
    self.assertLen(STEPS_RUN, max_len)
    np.testing.assert_array_equal(seqs, full_seqs)
    np.testing.assert_array_equal(scores, full_scores)
    normalizer = decoding_toys.normalizer(length_penalty, norm)
    for row in range(3):
      expected = decoding_toys.reference_beam_search(
        model.next_logp,
        row,
        vocab=vocab,
        beam_size=beam,
        max_len=max_len,
        num_return=beam,
        norm=normalizer,
      )
      self.assert_matches(seqs[row], scores[row], expected, max_len)

  def test_caption_cut_at_max_len_is_returned_with_its_score(self):
    vocab, max_len = 5, 3
    model = decoding_toys.table_model(3, 1, max_len, vocab, eos_bias=-50.0)
    seqs, scores = decoding_beam.beam_search(
      model.step_fn,
      model.init_carry,
      beam_size=2,
      max_len=max_len,
      length_penalty=1.0,
      length_norm='power',
    )
    best = seqs[0, 0].tolist()
    self.assertNotIn(decoding_toys.EOS, best)
    total = sum(
      model.next_logp(0, tuple(best[:i]))[best[i]] for i in range(max_len)
    )
    np.testing.assert_allclose(scores[0, 0], total / max_len, rtol=1e-5)

  def test_missing_hypotheses_score_minus_inf_with_pad(self):
    # Vocabulary {PAD, BOS, EOS}, one step: only 3 captions exist.
    model = decoding_toys.table_model(4, 1, 1, 3)
    seqs, scores = decoding_beam.beam_search(
      model.step_fn, model.init_carry, beam_size=4, max_len=1
    )
    self.assertTrue(np.all(np.isfinite(scores[0, :3])))
    self.assertEqual(float(scores[0, 3]), -np.inf)
    self.assertEqual(seqs[0, 3].tolist(), [0])
    self.assertCountEqual(seqs[0, :3, 0].tolist(), [0, 1, 2])

  @parameterized.named_parameters(
    ('beam', dict(beam_size=3)),
    ('diverse', dict(beam_size=4, num_groups=2, diversity=0.5)),
    ('greedy', dict(beam_size=1)),
  )
  def test_each_row_decodes_as_if_alone(self, settings):
    batch, vocab, max_len = 4, 9, 6
    # Row 1 is a padding row: its image context is all zeros.
    model = decoding_toys.rnn_model(5, batch, vocab, zero_rows=(1,))
    search = dict(settings, max_len=max_len, length_penalty=0.6)
    if 'num_groups' not in search:
      search.update(num_groups=1, diversity=0.0)
    seqs, scores = decoding_beam.diverse_beam_search(
      model.step_fn, model.init_carry, **search
    )
    params, context = model.step_fn.args
    for row in range(batch):
      alone = jax.tree_util.Partial(
        model.step_fn.func, params, context[row : row + 1]
      )
      init = {'h': model.init_carry['h'][row : row + 1]}
      row_seqs, row_scores = decoding_beam.diverse_beam_search(
        alone, init, **search
      )
      np.testing.assert_array_equal(seqs[row], row_seqs[0])
      np.testing.assert_allclose(scores[row], row_scores[0], rtol=1e-5)

  @parameterized.named_parameters(
    (name, alpha, norm) for name, alpha, norm in LENGTH_MODES
  )
  def test_greedy_is_the_argmax_caption(self, length_penalty, norm):
    vocab, max_len = 6, 5
    model = decoding_toys.rnn_model(6, 3, vocab)
    seqs, scores = decoding_sampling.greedy(
      model.step_fn, model.init_carry, max_len=max_len,
      length_penalty=length_penalty, length_norm=norm
    )
    for row in range(3):
      tokens, score = decoding_toys.reference_greedy(
        model.next_logp, row, vocab=vocab, max_len=max_len,
        norm=decoding_toys.normalizer(length_penalty, norm))
      self.assertEqual(seqs[row, 0].tolist(),
                       decoding_toys.padded(tokens, max_len))
      np.testing.assert_allclose(scores[row, 0], score, rtol=1e-5)

  def test_greedy_does_not_stop_at_a_likely_but_not_best_eos(self):
    # EOS is the second choice at the first step: a one-beam beam search
    # keeps that one-token ending (its score beats any longer caption's
    # sum), greedy goes on with the argmax word.
    vocab, max_len = 6, 4
    model = decoding_toys.table_model(7, 2, max_len, vocab, eos_bias=-30.0)
    table = np.array(model.step_fn.args[0])
    table[:, 0, decoding_toys.BOS, :] = 0.0
    table[:, 0, decoding_toys.BOS, 4] = 5.0
    table[:, 0, decoding_toys.BOS, decoding_toys.EOS] = 4.9
    step_fn = jax.tree_util.Partial(model.step_fn.func, jnp.asarray(table))
    seqs, _ = decoding_sampling.greedy(step_fn, model.init_carry,
                                       max_len=max_len)
    one_beam, _ = decoding_beam.beam_search(step_fn, model.init_carry,
                                            beam_size=1, max_len=max_len)
    for row in range(2):
      self.assertEqual(int(seqs[row, 0, 0]), 4)
      self.assertEqual(one_beam[row, 0].tolist(),
                       decoding_toys.padded((decoding_toys.EOS,), max_len))

  def test_greedy_follows_the_most_probable_token_until_eos(self):
    # EOS is never likely before the last step and certain at it, so greedy
    # is the textbook argmax caption.
    vocab, max_len = 6, 4
    model = decoding_toys.table_model(7, 2, max_len, vocab, eos_bias=-30.0)
    table = np.array(model.step_fn.args[0])
    table[:, max_len - 1, :, decoding_toys.EOS] = 60.0
    step_fn = jax.tree_util.Partial(model.step_fn.func, jnp.asarray(table))
    seqs, _ = decoding_sampling.greedy(step_fn, model.init_carry,
                                       max_len=max_len)
    for row in range(2):
      expected, previous = [], decoding_toys.BOS
      for position in range(max_len):
        previous = int(np.argmax(table[row, position, previous]))
        expected.append(previous)
      self.assertEqual(seqs[row, 0].tolist(), expected)
      self.assertEqual(expected[-1], decoding_toys.EOS)

  @parameterized.named_parameters(
    ('beam', 3, 1, 0.0), ('diverse', 4, 2, 0.7), ('greedy', 1, 1, 0.0)
  )
  def test_large_vocab_read_by_chunks_equals_reference(
    self, beam, groups, diversity
  ):
    vocab, max_len = 300, 4
    self.assertTrue(
      decoding_top_k.uses_chunks(beam // groups, vocab, beam // groups)
    )
    model = decoding_toys.table_model(13, 2, max_len, vocab, eos_bias=2.0)
    seqs, scores = decoding_beam.diverse_beam_search(
      model.step_fn,
      model.init_carry,
      beam_size=beam,
      num_groups=groups,
      diversity=diversity,
      max_len=max_len,
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
        num_groups=groups,
        diversity=diversity,
      )
      self.assert_matches(seqs[row], scores[row], expected, max_len)

  def test_n_best_ten(self):
    vocab, max_len = 8, 5
    model = decoding_toys.table_model(8, 2, max_len, vocab)
    seqs, scores = decoding_beam.beam_search(
      model.step_fn, model.init_carry, beam_size=10, max_len=max_len
    )
    self.assertEqual(seqs.shape, (2, 10, max_len))
    for row in range(2):
      expected = decoding_toys.reference_beam_search(
        model.next_logp,
        row,
        vocab=vocab,
        beam_size=10,
        max_len=max_len,
        num_return=10,
        norm=decoding_toys.normalizer(0.0, 'gnmt'),
      )
      self.assert_matches(seqs[row], scores[row], expected, max_len)


class DiverseBeamSearchTest(parameterized.TestCase):
  def test_one_group_is_beam_search(self):
    model = decoding_toys.rnn_model(9, 2, 7)
    settings = dict(max_len=5, beam_size=3, length_penalty=0.7)
    seqs, scores = decoding_beam.diverse_beam_search(
      model.step_fn,
      model.init_carry,
      num_groups=1,
      diversity=5.0,
      **settings,
    )
    beam_seqs, beam_scores = decoding_beam.beam_search(
      model.step_fn, model.init_carry, **settings
    )
    np.testing.assert_array_equal(seqs, beam_seqs)
    np.testing.assert_array_equal(scores, beam_scores)

  @parameterized.named_parameters(
    ('two_groups', 4, 2, 0.5, 0.0),
    ('three_groups', 6, 3, 2.0, 0.7),
    ('no_penalty', 4, 2, 0.0, 0.0),
  )
  def test_equals_plain_reference(
    self, beam_size, num_groups, diversity, length_penalty
  ):
    vocab, max_len = 7, 5
    model = decoding_toys.rnn_model(10, 2, vocab)
    seqs, scores = decoding_beam.diverse_beam_search(
      model.step_fn,
      model.init_carry,
      beam_size=beam_size,
      num_groups=num_groups,
      diversity=diversity,
      max_len=max_len,
      length_penalty=length_penalty,
    )
    for row in range(2):
      expected = decoding_toys.reference_beam_search(
        model.next_logp,
        row,
        vocab=vocab,
        beam_size=beam_size,
        max_len=max_len,
        num_return=beam_size,
        norm=decoding_toys.normalizer(length_penalty, 'gnmt'),
        num_groups=num_groups,
        diversity=diversity,
      )
      expected += [((), -np.inf)] * (beam_size - len(expected))
      self.assertEqual(
        seqs[row].tolist(),
        [decoding_toys.padded(seq, max_len) for seq, _ in expected],
      )
      np.testing.assert_allclose(
        scores[row], [s for _, s in expected], rtol=1e-5, atol=1e-5
      )

  def test_large_penalty_makes_groups_differ_at_every_step(self):
    vocab, max_len, groups = 8, 5, 3
    model = decoding_toys.rnn_model(11, 2, vocab)
    # EOS banned until max_len: every result is a full-length caption.
    rules = decoding_constraints.Constraints(min_len=max_len)
    settings = dict(max_len=max_len, constraints=rules)
    seqs, _ = decoding_beam.diverse_beam_search(
      model.step_fn,
      model.init_carry,
      beam_size=groups,
      num_groups=groups,
      diversity=1e4,
      **settings,
    )
    plain, _ = decoding_beam.beam_search(
      model.step_fn, model.init_carry, beam_size=groups, **settings
    )
    for row in range(2):
      # Each step's tokens of the three groups are pairwise different.
      for position in range(max_len):
        self.assertLen(set(seqs[row, :, position].tolist()), groups)
      shared = np.all(plain[row] == plain[row, :1], axis=0)
      self.assertTrue(np.any(shared))

  def test_no_penalty_duplicates_are_dropped(self):
    model = decoding_toys.table_model(12, 2, 5, 7)
    seqs, scores = decoding_beam.diverse_beam_search(
      model.step_fn,
      model.init_carry,
      beam_size=4,
      num_groups=2,
      diversity=0.0,
      max_len=5,
    )
    # Both groups run the same search: the second adds nothing new.
    beam_seqs, beam_scores = decoding_beam.beam_search(
      model.step_fn, model.init_carry, beam_size=2, max_len=5
    )
    np.testing.assert_array_equal(seqs[:, :2], beam_seqs)
    np.testing.assert_allclose(scores[:, :2], beam_scores, rtol=1e-6)
    np.testing.assert_array_equal(scores[:, 2:], -np.inf)


class CompilationTest(absltest.TestCase):
  def test_second_batch_of_the_same_shape_does_not_retrace(self):
    traces = []

    def step(table, tokens, carry):
      traces.append(1)
      return decoding_toys._table_step(table, tokens, carry)

    for seed in range(3):
      model = decoding_toys.table_model(seed, 2, 4, 6)
      step_fn = jax.tree_util.Partial(step, *model.step_fn.args)
      decoding_beam.beam_search(
        step_fn, model.init_carry, beam_size=3, max_len=4
      )
      if seed == 0:
        traced_once = len(traces)
    self.assertGreater(traced_once, 0)
    self.assertLen(traces, traced_once)

  def test_caller_jit_with_params_as_arguments_compiles_once(self):
    traces = []

    @jax.jit
    def caption(table, positions):
      traces.append(1)
      step_fn = jax.tree_util.Partial(decoding_toys._table_step, table)
      return decoding_beam.beam_search(
        step_fn, {'position': positions}, beam_size=2, max_len=4
      )

    for seed in range(2):
      model = decoding_toys.table_model(seed, 3, 4, 6)
      seqs, _ = caption(model.step_fn.args[0], model.init_carry['position'])
      expected, _ = decoding_beam.beam_search(
        model.step_fn, model.init_carry, beam_size=2, max_len=4
      )
      np.testing.assert_array_equal(seqs, expected)
    self.assertLen(traces, 1)


class MisuseTest(absltest.TestCase):
  def test_bad_settings_are_named(self):
    model = decoding_toys.table_model(0, 1, 3, 5)
    for settings, message in [
      (dict(beam_size=0), 'beam_size'),
      (dict(beam_size=2, num_return=3), 'num_return'),
      (dict(beam_size=2, length_norm='mean'), 'length_norm'),
      (dict(beam_size=2, eos_id=9), 'eos_id=9'),
    ]:
      with self.assertRaisesRegex(ValueError, message):
        decoding_beam.beam_search(
          model.step_fn, model.init_carry, max_len=3, **settings
        )

  def test_wrong_logits_shape_is_reported(self):
    def step(tokens, carry):
      return jnp.zeros(tokens.shape[:1] + (5,)), carry

    with self.assertRaisesRegex(ValueError, r'logits \[batch, beam, vocab\]'):
      decoding_beam.beam_search(
        step, {'h': jnp.zeros((2, 3))}, beam_size=2, max_len=3
      )

  def test_changed_carry_is_reported(self):
    def step(tokens, carry):
      logits = jnp.zeros(tokens.shape + (5,))
      return logits, {'h': carry['h'].astype(jnp.int32)}

    with self.assertRaisesRegex(ValueError, 'carry with the structure'):
      decoding_beam.beam_search(
        step, {'h': jnp.zeros((2, 3))}, beam_size=2, max_len=3
      )


if __name__ == '__main__':
  absltest.main()
