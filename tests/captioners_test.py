"""Tests for the captioners: step-wise decoding reproduces teacher forcing."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from capjax.data import vocab as vocab_lib
from capjax.evaluators import captions as captions_evaluator
from capjax.models import captioning

BATCH, CELLS, DIM, TIME, VOCAB = 3, 4, 5, 6, 11


def _config(decoder, cell, **overrides):
  model = ml_collections.ConfigDict(dict(
      decoder=decoder, cell=cell, embed_dim=7, hidden_dim=8, attention_dim=6,
      dropout=0.0, fused=True, unroll=1, merge='add', blind=False,
      encoder=ml_collections.ConfigDict({'name': 'identity'}),
  ))
  model.update(overrides)
  return ml_collections.ConfigDict({'model': model})


def _batch():
  keys = jax.random.split(jax.random.key(0), 2)
  features = jax.random.normal(keys[0], (BATCH, CELLS, DIM))
  tokens = jax.random.randint(keys[1], (BATCH, TIME), 1, VOCAB)
  return features, tokens


DECODERS = ['show_tell', 'merge', 'soft_attention']


class CaptionerTest(parameterized.TestCase):

  @parameterized.product(decoder=DECODERS, cell=['lstm', 'gru'])
  def test_stepping_reproduces_teacher_forcing(self, decoder, cell):
    model = captioning.create(_config(decoder, cell), VOCAB)
    features, tokens = _batch()
    params = model.init(jax.random.key(1), features, tokens)

    @jax.jit
    def both(params, features, tokens):
      logits, _ = model.logits(params, features, tokens, train=False)
      step_fn, carry = model.decoder_fns(params, features)
      stepped = []
      for t in range(TIME):
        step_logits, carry = step_fn(tokens[:, t], carry)
        stepped.append(step_logits)
      return logits, jnp.stack(stepped, 1)

    logits, stepped = both(params, features, tokens)
    self.assertEqual(logits.shape, (BATCH, TIME, VOCAB))
    np.testing.assert_allclose(stepped, logits, rtol=1e-5, atol=1e-5)

  @parameterized.parameters(*DECODERS)
  def test_beam_axis_steps_like_repeated_batch(self, decoder):
    model = captioning.create(_config(decoder, 'lstm'), VOCAB)
    features, tokens = _batch()
    params = model.init(jax.random.key(1), features, tokens)
    beam = 2
    beam_tokens = jnp.stack([tokens[:, 0], tokens[:, 1]], axis=1)

    @jax.jit
    def both(params, features):
      step_fn, carry = model.decoder_fns(params, features)
      beam_carry = jax.tree.map(
          lambda x: jnp.repeat(x[:, None], beam, axis=1), carry
      )
      beam_logits, _ = step_fn(beam_tokens, beam_carry)
      singles = [step_fn(beam_tokens[:, k], carry)[0] for k in range(beam)]
      return beam_logits, jnp.stack(singles, 1)

    beam_logits, singles = both(params, features)
    np.testing.assert_allclose(beam_logits, singles, rtol=1e-5, atol=1e-6)

  def test_soft_attention_sows_normalised_weights(self):
    model = captioning.create(_config('soft_attention', 'lstm'), VOCAB)
    features, tokens = _batch()
    params = model.init(jax.random.key(1), features, tokens)
    _, intermediates = model.logits(params, features, tokens, train=False)
    alpha = intermediates['attention']
    self.assertEqual(alpha.shape, (BATCH, TIME, CELLS))
    np.testing.assert_allclose(alpha.sum(-1), 1.0, rtol=1e-5)

  def test_blind_model_ignores_the_image(self):
    model = captioning.create(_config('show_tell', 'lstm', blind=True), VOCAB)
    features, tokens = _batch()
    params = model.init(jax.random.key(1), features, tokens)
    a, _ = model.logits(params, features, tokens, train=False)
    b, _ = model.logits(params, features * 3 + 1, tokens, train=False)
    np.testing.assert_array_equal(a, b)

  def test_dropout_changes_training_logits_only(self):
    model = captioning.create(
        _config('merge', 'gru', dropout=0.5), VOCAB)
    features, tokens = _batch()
    params = model.init(jax.random.key(1), features, tokens)
    eval_a, _ = model.logits(params, features, tokens, train=False)
    eval_b, _ = model.logits(params, features, tokens, train=False)
    train, _ = model.logits(params, features, tokens, train=True,
                            dropout_rng=jax.random.key(2))
    np.testing.assert_array_equal(eval_a, eval_b)
    self.assertGreater(float(jnp.abs(train - eval_a).max()), 1e-3)

  @parameterized.parameters('greedy', 'beam')
  def test_decoding_compiles_once_per_shape(self, method):
    config = _config('soft_attention', 'lstm')
    config.eval = ml_collections.ConfigDict(dict(
        decode=method, beam_size=3, num_groups=1, diversity_penalty=0.0,
        length_penalty=0.0, length_norm='gnmt', temperature=1.0, top_k=0,
        top_p=1.0, suppress_unk=False, no_repeat=False, block_trigrams=False,
        no_end_after=(), min_len=0, max_decode_len=5))
    config.dataset = ml_collections.ConfigDict({'max_len': 5})
    model = captioning.create(config, VOCAB)
    vocab = vocab_lib.Vocab([f'w{i}' for i in range(VOCAB - 4)])
    traces = []

    def decode(params, features, rng):
      traces.append(1)
      return captions_evaluator.decode_images(config, vocab, model, params,
                                              features, rng)

    decode = jax.jit(decode)
    features, tokens = _batch()
    params = model.init(jax.random.key(1), features, tokens)
    first = decode(params, features, jax.random.key(0))
    other_params = jax.tree.map(lambda p: p * 1.01, params)
    second = decode(other_params, features[::-1] + 1.0, jax.random.key(0))
    self.assertLen(traces, 1)
    self.assertEqual(first.shape, (BATCH, 5))
    self.assertEqual(second.shape, (BATCH, 5))

  def test_unknown_decoder_names_the_config_key(self):
    with self.assertRaisesRegex(ValueError, 'model.decoder'):
      captioning.create(_config('transformer', 'lstm'), VOCAB)


if __name__ == '__main__':
  absltest.main()
