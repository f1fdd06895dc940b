"""Seed 003's generator: stepping reproduces teacher forcing."""

from absl.testing import absltest
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from capjax.models import captioning

BATCH, DIM, TIME, VOCAB = 3, 5, 6, 11


def _model():
  model = ml_collections.ConfigDict(dict(
      decoder='image_bias', cell='lstm', embed_dim=7, hidden_dim=8,
      dropout=0.0, fused=True, unroll=1, blind=False,
      encoder=ml_collections.ConfigDict({'name': 'identity'})))
  return captioning.create(ml_collections.ConfigDict({'model': model}),
                           VOCAB)


class ImageBiasTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    keys = jax.random.split(jax.random.key(0), 2)
    cls.features = jax.random.normal(keys[0], (BATCH, 2, DIM))
    cls.tokens = jax.random.randint(keys[1], (BATCH, TIME), 1, VOCAB)
    cls.model = _model()
    cls.params = jax.jit(cls.model.init)(jax.random.key(1), cls.features,
                                         cls.tokens)

  def test_stepping_reproduces_teacher_forcing_with_a_beam_axis(self):
    model = self.model

    @jax.jit
    def both(params, features, tokens):
      logits, _ = model.logits(params, features, tokens, train=False)
      step_fn, carry = model.decoder_fns(params, features)
      carry = jax.tree.map(lambda x: jnp.repeat(x[:, None], 2, 1), carry)
      stepped = []
      for t in range(TIME):
        step_logits, carry = step_fn(
            jnp.repeat(tokens[:, t, None], 2, 1), carry)
        stepped.append(step_logits)
      return logits, jnp.stack(stepped, 2)

    logits, stepped = both(self.params, self.features, self.tokens)
    for beam in range(2):
      np.testing.assert_allclose(stepped[:, beam], logits, rtol=1e-5,
                                 atol=1e-5)

  def test_the_image_enters_only_through_the_first_step_bias(self):
    logits = jax.jit(lambda p, f, t: self.model.logits(p, f, t, train=False)[0])
    a = logits(self.params, self.features, self.tokens)
    b = logits(self.params, self.features * 2.0 + 1.0, self.tokens)
    self.assertGreater(float(jnp.abs(a[:, 0] - b[:, 0]).max()), 1e-4)
    # With W_hi = 0 the image is invisible: it has no other way in.
    params = jax.tree.map(lambda x: x, self.params)
    params['decoder']['image_bias']['kernel'] = jnp.zeros_like(
        params['decoder']['image_bias']['kernel'])
    c = logits(params, self.features, self.tokens)
    d = logits(params, self.features * 2.0 + 1.0, self.tokens)
    np.testing.assert_array_equal(c, d)


if __name__ == '__main__':
  absltest.main()
