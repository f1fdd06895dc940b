"""Tests for the m-RNN captioner: every variant steps like its scan, the
fused ReLU recurrence gives autodiff's gradients, and the variants differ
where the paper says they do."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from capjax.models.captioners import mrnn
from configs.mrnn import flickr8k as mrnn_flickr8k
from configs.mrnn import shapes as mrnn_shapes

BATCH, DIM, TIME, VOCAB = 3, 5, 6, 11
VARIANTS = sorted(mrnn.VARIANTS)


def _model(variant, fused=True, dtype='float32'):
  return mrnn.MRNN(vocab_size=VOCAB, embed_dim=4, hidden_dim=6,
                   multimodal_dim=7, variant=variant, fused=fused, dtype=dtype)


def _batch():
  keys = jax.random.split(jax.random.key(0), 2)
  image = jax.random.normal(keys[0], (BATCH, DIM))
  features = (image, image[:, None])
  tokens = jax.random.randint(keys[1], (BATCH, TIME), 1, VOCAB)
  return features, tokens


class MRNNTest(parameterized.TestCase):

  @parameterized.parameters(*VARIANTS)
  def test_stepping_reproduces_the_scan(self, variant):
    model = _model(variant)
    features, tokens = _batch()
    params = model.init(jax.random.key(1), features, tokens, train=False)

    @jax.jit
    def both(params):
      logits = model.apply(params, features, tokens, train=False)
      context = model.apply(params, features, method='prepare')
      carry = model.apply(params, context, method='init_carry')
      stepped = []
      for t in range(TIME):
        step_logits, carry = model.apply(params, carry, tokens[:, t], context,
                                         method='step')
        stepped.append(step_logits)
      return logits, jnp.stack(stepped, 1)

    logits, stepped = both(params)
    self.assertEqual(logits.shape, (BATCH, TIME, VOCAB))
    np.testing.assert_allclose(stepped, logits, rtol=1e-5, atol=1e-5)

  @parameterized.parameters(*VARIANTS)
  def test_fused_gradients_match_autodiff(self, variant):
    features, tokens = _batch()
    fused, plain = _model(variant), _model(variant, fused=False)
    params = fused.init(jax.random.key(1), features, tokens, train=False)

    def loss(model, params, image):
      logits = model.apply(params, (image, image[:, None]), tokens,
                           train=False)
      return jnp.sum(jax.nn.log_softmax(logits)[..., 2] * jnp.arange(TIME))

    grads = [jax.grad(lambda p, i, m=m: loss(m, p, i), (0, 1))(
        params, features[0]) for m in (fused, plain)]
    for g_f, g_p in zip(*map(jax.tree.leaves, grads)):
      np.testing.assert_allclose(g_f, g_p, rtol=1e-4, atol=1e-6)
    # Every parameter learns (no dead branch), and the image gets a gradient
    # exactly when the variant sees it.
    self.assertTrue(all(float(jnp.abs(g).max()) > 0
                        for g in jax.tree.leaves(grads[0][0])))
    image_grad = float(jnp.abs(grads[0][1]).max())
    if variant == 'RNN-Base':
      self.assertEqual(image_grad, 0.0)
    else:
      self.assertGreater(image_grad, 0.0)

  def test_variants_have_the_parameters_of_their_figure(self):
    features, tokens = _batch()

    def names(variant):
      params = _model(variant).init(jax.random.key(1), features, tokens,
                                    train=False)['params']
      return set(params)

    full = names('mrnn')
    self.assertEqual(full, {'embed1', 'embed2', 'rnn', 'mm_word', 'mm_rnn',
                            'mm_image', 'output'})
    self.assertEqual(names('NoEmbInput'), full - {'mm_word'})
    self.assertEqual(names('OneLayerEmb'), full - {'embed2'})
    self.assertEqual(names('RNN-Base'), full - {'mm_image'})
    self.assertEqual(names('VisualInRnn'), full - {'mm_image'} | {'rnn_image'})
    self.assertEqual(names('VisualInRnn-both'), full | {'rnn_image'})
    self.assertEqual(names('VisualInRnn-both-shared'), full)
    self.assertEqual(names('mrnn-shared'),
                     full - {'output'} | {'intermediate', 'output_bias'})

  def test_sentence_states_plus_image_give_the_logits(self):
    model = _model('mrnn-shared')
    features, tokens = _batch()
    params = model.init(jax.random.key(1), features, tokens, train=False)
    logits = model.apply(params, features, tokens, train=False)
    states = model.apply(params, tokens, method='sentence_states')
    image = model.apply(params, features, method='prepare')['image_mm']
    again = model.apply(params, states + image[:, None], method='predict')
    np.testing.assert_allclose(again, logits, rtol=1e-5, atol=1e-6)

  @parameterized.parameters('mrnn', 'mrnn-shared', 'VisualInRnn-both')
  def test_bfloat16_logits_and_gradients_agree_with_float32(self, variant):
    features, tokens = _batch()
    params = _model(variant).init(jax.random.key(1), features, tokens,
                                  train=False)

    def loss(params, dtype):
      logits = _model(variant, dtype=dtype).apply(params, features, tokens,
                                                  train=False)
      return jnp.sum(jax.nn.log_softmax(logits)[..., 1]), logits

    out = {d: jax.jit(jax.value_and_grad(loss, has_aux=True),
                      static_argnums=1)(params, d)
           for d in ('float32', 'bfloat16')}
    (_, bf16), bf16_grads = out['bfloat16']
    (_, f32), f32_grads = out['float32']
    self.assertEqual(bf16.dtype, jnp.float32)
    error = float(jnp.abs(bf16 - f32).max() / jnp.abs(f32).max())
    self.assertLess(error, 3e-2)
    self.assertGreater(error, 1e-5)  # it did compute in bfloat16
    for got, want in zip(jax.tree.leaves(bf16_grads),
                         jax.tree.leaves(f32_grads)):
      self.assertEqual(got.dtype, jnp.float32)
      np.testing.assert_allclose(got, want, atol=5e-2 * float(
          jnp.abs(want).max()) + 1e-6)

  def test_configs_build_every_variant(self):
    for variant in VARIANTS:
      for config in (mrnn_shapes, mrnn_flickr8k):
        c = config.get_config(f'tiny,variant={variant}')
        self.assertEqual(c.model.mrnn.variant, variant)
        self.assertEqual(c.model.decoder, 'mrnn')
    with self.assertRaisesRegex(ValueError, 'model.mrnn.variant'):
      mrnn_shapes.get_config('variant=VisualInRNN')  # case matters

  def test_unknown_variant_names_the_config_key(self):
    with self.assertRaisesRegex(ValueError, 'model.mrnn.variant'):
      mrnn.switches('m-RNN-typo')


if __name__ == '__main__':
  absltest.main()
