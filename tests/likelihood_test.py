"""Tests for likelihood retrieval: the m-RNN fast path and the any-captioner
adapter against a plainly written forward pass per pair; Eq. 7."""

from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jax
import ml_collections
import numpy as np

from capjax import parallel
from capjax.models import captioning
from capjax.models.retrieval import likelihood

IMAGES, SENTENCES, DIM, TIME, VOCAB = 3, 5, 6, 7, 13


def _model(decoder, variant='mrnn'):
  model = ml_collections.ConfigDict(dict(
      decoder=decoder, cell='gru', embed_dim=4, hidden_dim=6,
      attention_dim=5, dropout=0.0, fused=True, unroll=1, merge='add',
      blind=False, encoder=ml_collections.ConfigDict({'name': 'identity'}),
      mrnn=ml_collections.ConfigDict(dict(variant=variant,
                                          multimodal_dim=8))))
  return captioning.create(ml_collections.ConfigDict({'model': model}), VOCAB)


def _data():
  keys = jax.random.split(jax.random.key(0), 3)
  images = jax.random.normal(keys[0], (IMAGES, 2, DIM))
  tokens = np.array(jax.random.randint(keys[1], (SENTENCES, TIME + 1), 4,
                                       VOCAB))
  lengths = np.array([7, 3, 5, 1, 6])
  tokens[np.arange(TIME + 1)[None] > lengths[:, None]] = 0
  inputs, targets = tokens[:, :-1], tokens[:, 1:]
  return images, inputs, targets, (targets != 0).astype(np.float32)


def _loop(model, params, images, inputs, targets, weights):
  """log P(s | I) pair by pair, from the model's own teacher forcing."""
  out = np.zeros((IMAGES, SENTENCES))
  logits_fn = jax.jit(lambda i, s: model.logits(params, i, s,
                                                train=False)[0])
  for i in range(IMAGES):
    for s in range(SENTENCES):
      logits = np.asarray(logits_fn(images[i:i + 1], inputs[s:s + 1])[0],
                          np.float64)
      log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
      out[i, s] = sum(log_p[t, targets[s, t]] for t in range(TIME)
                      if weights[s, t])
  return out


class LikelihoodTest(parameterized.TestCase):

  def test_only_image_free_recurrences_take_the_fast_path(self):
    self.assertTrue(likelihood.supports_fast(_model('mrnn', 'mrnn')))
    self.assertTrue(likelihood.supports_fast(_model('mrnn', 'RNN-Base')))
    self.assertFalse(likelihood.supports_fast(_model('mrnn', 'VisualInRnn')))
    self.assertFalse(likelihood.supports_fast(_model('show_tell')))

  @parameterized.parameters(('mrnn', 'mrnn-shared', True),
                            ('show_tell', 'mrnn', False))
  def test_all_pairs_match_a_forward_pass_per_pair(self, decoder, variant,
                                                   fast):
    model = _model(decoder, variant)
    self.assertEqual(likelihood.supports_fast(model), fast)
    images, inputs, targets, weights = _data()
    params = model.init(jax.random.key(1), images, inputs[:IMAGES])
    expected = _loop(model, params, images, inputs, targets, weights)
    mesh = parallel.make_mesh()
    # 15 pairs in chunks of 8, sharded over 8 devices: padding included.
    got = likelihood.score(model, params, images, inputs, targets, weights,
                           chunk=8, mesh=mesh)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    if fast:  # the fast path is the adapter's answer, not a different one
      adapted = likelihood.score(model, params, images, inputs, targets,
                                 weights, chunk=8, builder=likelihood.adapter)
      np.testing.assert_allclose(got, adapted, rtol=1e-5, atol=1e-5)

  @parameterized.parameters('mrnn', 'mrnn-shared')
  def test_packed_positions_equal_the_padded_pairs(self, variant):
    model = _model('mrnn', variant)
    images, inputs, targets, weights = _data()
    params = model.init(jax.random.key(1), images, inputs[:IMAGES])
    padded = likelihood.score(model, params, images, inputs, targets,
                              weights, chunk=8)
    # 3 images x 22 real positions over 8 devices: an image block of 8 (5
    # padding images), one position block of 24 (2 padding positions).
    self.assertEqual(len(likelihood.packed_positions(weights)[0]), 22)
    self.assertEqual(likelihood.packed_blocks(IMAGES, 22, 16, 8),
                     ((8, 1), (24, 1)))
    packed = likelihood.compile_packed_scorer(
        model, weights, num_images=IMAGES, chunk=16,
        mesh=parallel.make_mesh())(params, images, inputs, targets)
    np.testing.assert_allclose(packed, padded, rtol=1e-5, atol=1e-5)
    # Blocks of 2 images x 8 positions: 2 x 3 steps, the last image block
    # half padding, and sentences whose words span two position blocks.
    with mock.patch.object(likelihood, 'POSITION_BLOCK', 8):
      self.assertEqual(likelihood.packed_blocks(IMAGES, 22, 16),
                       ((2, 2), (8, 3)))
      blocked = likelihood.compile_packed_scorer(
          model, weights, num_images=IMAGES, chunk=16)(
              params, images, inputs, targets)
    np.testing.assert_allclose(blocked, padded, rtol=1e-5, atol=1e-5)

  def test_eq7_divides_by_the_mean_probability_over_prior_images(self):
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(4, 6)) * 5 - 30
    prior = rng.normal(size=(9, 6)) * 5 - 30
    expected = np.log(np.exp(scores) / np.exp(prior).mean(axis=0))
    np.testing.assert_allclose(likelihood.normalised(scores, prior),
                               expected, rtol=1e-9)


if __name__ == '__main__':
  absltest.main()
