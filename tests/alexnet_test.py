"""AlexNet from torchvision weights equals torchvision's AlexNet.

torchvision's `alexnet(weights=None)` (its own random init, no download) is
saved as a state dict, converted by `capjax.converters` (what
`python -m capjax.convert_weights --arch=alexnet --source=torch` runs) and
both compute fc7 and the conv5 grid on the same 64 px images (pool5 is 1x1
there; the 6x6 adaptive pool before fc6 replicates it, as in torch).
"""

import os
import tempfile

from absl.testing import absltest
import jax
import numpy as np
import torch
import torchvision

from capjax import converters
from capjax.models import encoders

RTOL = 1e-4
TORCH_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
TORCH_STD = np.array([0.229, 0.224, 0.225], np.float32)


def _torch_features(model, images):
  """(fc7 after ReLU [b, 4096], conv5 after ReLU [b, h * w, 256])."""
  captured = {}
  # The ReLUs are in-place: hook the ReLU modules themselves.
  modules = {'grid': model.features[11], 'global': model.classifier[5]}
  hooks = [m.register_forward_hook(
      lambda _, __, out, key=key: captured.__setitem__(key, out.clone()))
           for key, m in modules.items()]
  x = (images.astype(np.float32) / 255.0 - TORCH_MEAN) / TORCH_STD
  with torch.no_grad():
    model(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
  for hook in hooks:
    hook.remove()
  grid = captured['grid'].permute(0, 2, 3, 1).numpy()
  return (captured['global'].numpy(),
          grid.reshape(grid.shape[0], -1, grid.shape[-1]))


def _assert_close(ours, theirs, what):
  ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
  np.testing.assert_array_equal(ours.shape, theirs.shape, err_msg=what)
  scale = np.abs(theirs).max()
  assert scale > 0, what
  np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=RTOL * scale,
                             err_msg=what)


class AlexNetTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.TemporaryDirectory()
    torch.manual_seed(0)
    cls.model = torchvision.models.alexnet(weights=None).eval()
    cls.state = cls.model.state_dict()
    cls.path = os.path.join(cls.tmp.name, 'alexnet.pth')
    torch.save(cls.state, cls.path)

  @classmethod
  def tearDownClass(cls):
    cls.tmp.cleanup()
    super().tearDownClass()

  def _save(self, name, state):
    path = os.path.join(self.tmp.name, name)
    torch.save(state, path)
    return path

  def test_converted_weights_give_torchvisions_fc7_and_conv5(self):
    images = np.random.default_rng(0).integers(
        0, 256, (2, 64, 64, 3)).astype(np.uint8)
    theirs = _torch_features(self.model, images)
    encoder, params, image_size = converters.convert('alexnet', 'torch',
                                                     self.path)
    self.assertEqual(image_size, 224)
    ours = jax.jit(encoder.apply)(params, images)
    _assert_close(ours[0], theirs[0], 'fc7')
    _assert_close(ours[1], theirs[1], 'conv5 grid')

  def test_sizes_at_224_px(self):
    encoder = encoders.ENCODERS['alexnet']()
    images = jax.ShapeDtypeStruct((2, 224, 224, 3), np.uint8)
    params = jax.eval_shape(encoder.init, jax.random.key(0), images)
    pooled, grid = jax.eval_shape(encoder.apply, params, images)
    count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
    # torchvision's 61,100,840 without the 1000-way classifier.
    self.assertEqual(count, 61_100_840 - (4096 * 1000 + 1000))
    self.assertEqual(pooled.shape, (2, 4096))
    self.assertEqual(grid.shape, (2, 13 * 13, 256))

  def test_wrong_files_are_one_line_errors(self):
    with self.assertRaisesRegex(converters.ConversionError,
                                'Keras has no alexnet'):
      converters.convert('alexnet', 'keras', self.path)
    convs = {k: v for k, v in self.state.items()
             if k.startswith('features.')}  # small files: no classifier
    with self.assertRaisesRegex(converters.ConversionError,
                                "no 'classifier.1.weight'"):
      converters.convert('alexnet', 'torch', self._save('cut.pth', convs))
    state = dict(convs)
    state['features.3.weight'] = torch.zeros(192, 64, 3, 3)
    with self.assertRaisesRegex(converters.ConversionError,
                                'features.3 is .*conv2 has 192 5x5'):
      converters.convert('alexnet', 'torch', self._save('conv2.pth', state))
    state = {k: v for k, v in convs.items()
             if not k.startswith('features.10.')}
    with self.assertRaisesRegex(converters.ConversionError,
                                r'convs at features.\[0, 3, 6, 8\]'):
      converters.convert('alexnet', 'torch', self._save('four.pth', state))
    with open(self._save('small.pth', convs), 'rb') as f:
      data = f.read()
    truncated = os.path.join(self.tmp.name, 'truncated.pth')
    with open(truncated, 'wb') as f:
      f.write(data[:len(data) // 2])
    with self.assertRaisesRegex(converters.ConversionError,
                                'not a readable torch file'):
      converters.convert('alexnet', 'torch', truncated)


if __name__ == '__main__':
  absltest.main()
