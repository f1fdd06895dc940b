"""model.dtype beyond the benchmark captioners: the seed-003 generator, the
story LM and the tag head compute in bfloat16 (float32 outputs) and agree
with float32."""

from absl.testing import absltest
import jax
import jax.numpy as jnp

from capjax.models import char_lm
from capjax.models import multilabel
from capjax.models.captioners import image_bias


def _relative_error(got, want) -> float:
  return float(jnp.abs(got - want).max() / jnp.abs(want).max())


class _ImageBiasLogits(image_bias.ImageBias):

  def __call__(self, features, tokens):  # pylint: disable=arguments-differ
    return super().__call__(features, tokens, train=False)


class ModelPrecisionTest(absltest.TestCase):

  def test_char_lm_and_tag_head_agree_with_float32(self):
    tokens = jax.random.randint(jax.random.key(0), (3, 9), 1, 17)
    feature = jax.random.normal(jax.random.key(1), (3, 10))
    features = (feature, feature[:, None])
    cases = (
        (lambda d: _ImageBiasLogits(17, embed_dim=8, hidden_dim=12, dtype=d),
         (features, tokens)),
        (lambda d: char_lm.CharLM(17, embed_dim=8, hidden_dim=12,
                                  num_layers=2, dtype=d), tokens),
        (lambda d: multilabel.TagHead(17, hidden_dim=12, dtype=d), feature),
    )
    for build, inputs in cases:
      inputs = inputs if isinstance(inputs, tuple) else (inputs,)
      params = build('float32').init(jax.random.key(2), *inputs)
      out = {d: jax.tree.leaves(jax.jit(build(d).apply)(params, *inputs))[0]
             for d in ('float32', 'bfloat16')}
      self.assertEqual(out['bfloat16'].dtype, jnp.float32)
      error = _relative_error(out['bfloat16'], out['float32'])
      self.assertLess(error, 3e-2)
      self.assertGreater(error, 1e-5)  # it did compute in bfloat16


if __name__ == '__main__':
  absltest.main()
