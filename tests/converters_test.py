"""Converted weights give the source framework's features (Keras, torch).

Random weights are written in each framework's own file format (Keras's
legacy `.h5` and Keras 3 `.weights.h5`, torch state dicts), converted with
`capjax.converters` (what `python -m capjax.convert_weights` runs), and the
capjax encoder's global vector and grid are compared with the ones Keras (on
its JAX backend) and torchvision compute on the same images, at small input
sizes to keep the test fast.
"""

import os
import tempfile
from unittest import mock

os.environ.setdefault('KERAS_BACKEND', 'jax')

from absl.testing import absltest  # pylint: disable=g-import-not-at-top
import h5py
import jax
import keras
from keras.src.legacy.saving import legacy_h5_format
import numpy as np
import pytest
import torch
import torchvision

from capjax import converters
from capjax.models.encoders import checkpoint

# Keras's JAX backend calls np.array(x, copy=False) on every weight.
pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning')
RTOL = 1e-4
TORCH_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
TORCH_STD = np.array([0.229, 0.224, 0.225], np.float32)


def _images(size, batch=2, seed=0):
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (batch, size, size, 3)).astype(np.uint8)


def _assert_close(ours, theirs, what):
  ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
  np.testing.assert_array_equal(ours.shape, theirs.shape, err_msg=what)
  scale = np.abs(theirs).max()
  assert scale > 0, what
  np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=RTOL * scale,
                             err_msg=what)


def _random_value(role, shape, rng):
  """Random weights that keep activations O(1) through a deep net."""
  if role in ('kernel', 'weight') and len(shape) >= 2:
    fan_in = int(np.prod(shape[:-1])) if role == 'kernel' else int(
        np.prod(shape[1:]))
    return rng.standard_normal(shape, np.float32) * np.sqrt(2.0 / fan_in)
  if role in ('gamma', 'moving_variance', 'running_var'):
    return rng.uniform(0.5, 1.5, shape).astype(np.float32)
  if role == 'weight':  # torch batch-norm gamma
    return rng.uniform(0.5, 1.5, shape).astype(np.float32)
  return rng.normal(0.0, 0.1, shape).astype(np.float32)


def _zeros(shape, *args, dtype=None, **kwargs):
  del args, kwargs
  return np.zeros(shape, dtype or 'float32')  # jnp would compile per shape


def _keras_model(build, size, seed=0):
  """A keras.applications model with random weights (built without Keras's
  slow per-layer random initialisers: every weight is set afterwards)."""
  patches = [mock.patch(f'keras.src.backend.jax.random.{name}', _zeros)
             for name in ('uniform', 'normal', 'truncated_normal')]
  for patch in patches:
    patch.start()
  try:
    model = build(weights=None, input_shape=(size, size, 3))
  finally:
    for patch in patches:
      patch.stop()
  rng = np.random.default_rng(seed)
  for variable in model.weights:
    role = variable.path.split('/')[-1]
    variable.assign(_random_value(role, tuple(variable.shape), rng))
  return model


def _save_legacy_h5(model, path):
  with h5py.File(path, 'w') as f:
    legacy_h5_format.save_weights_to_hdf5_group(f, model)


def _keras_features(model, inputs, grid_layer, global_layer=None):
  outputs = [model.get_layer(grid_layer).output]
  if global_layer:
    outputs.append(model.get_layer(global_layer).output)
  features = keras.Model(model.inputs, outputs).predict(inputs, verbose=0)
  if not isinstance(features, (list, tuple)):
    features = [features]
  grid = np.asarray(features[0])
  pooled = (np.asarray(features[1]) if global_layer
            else grid.mean(axis=(1, 2)))
  return pooled, grid.reshape(grid.shape[0], -1, grid.shape[-1])


_APPLY = {}


def _apply(encoder, params, images):
  """encoder.apply, jitted once per encoder (encoders are hashable)."""
  if encoder not in _APPLY:
    _APPLY[encoder] = jax.jit(encoder.apply)
  return _APPLY[encoder](params, images)


def _convert_and_apply(arch, source, path, images, save=True):
  """Converts (through the checkpoint directory when `save`) and applies."""
  if not save:  # VGG's 138M parameters take seconds to write and read
    encoder, params, image_size = converters.convert(arch, source, path)
    info = {'image_size': image_size}
    return encoder, params, info, _apply(encoder, params, images)
  with tempfile.TemporaryDirectory() as out:
    converters.convert_to_directory(arch, source, path, out)
    encoder, params, info = checkpoint.load(out)
  return encoder, params, info, _apply(encoder, params, images)


class KerasParityTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    tmp = tempfile.TemporaryDirectory()
    self.addCleanup(tmp.cleanup)
    self.dir = tmp.name

  def test_vgg16_legacy_h5(self):
    size = 32  # Keras and capjax both flatten pool5 as (H, W, C)
    model = _keras_model(keras.applications.VGG16, size)
    path = os.path.join(self.dir, 'vgg16.h5')
    _save_legacy_h5(model, path)
    images = _images(size)
    theirs = _keras_features(
        model, keras.applications.vgg16.preprocess_input(
            images.astype(np.float32)), 'block5_conv3', 'fc2')
    _, _, info, ours = _convert_and_apply('vgg16', 'keras', path, images,
                                        save=False)
    self.assertEqual(info['image_size'], size)
    _assert_close(ours[0], theirs[0], 'fc7')
    _assert_close(ours[1], theirs[1], 'conv5 grid')
    with self.assertRaisesRegex(converters.ConversionError,
                                'block3_conv4'):
      converters.convert('vgg19', 'keras', path)

  def test_resnet50_both_layouts_and_naming_schemes(self):
    size = 64
    model = _keras_model(keras.applications.ResNet50, size)
    legacy = os.path.join(self.dir, 'resnet50.h5')
    _save_legacy_h5(model, legacy)
    keras3 = os.path.join(self.dir, 'resnet50.weights.h5')
    model.save_weights(keras3)
    images = _images(size)
    theirs = _keras_features(
        model, keras.applications.resnet50.preprocess_input(
            images.astype(np.float32)), 'conv5_block3_out')
    encoder, params, _, ours = _convert_and_apply('resnet50', 'keras',
                                                  legacy, images)
    _assert_close(ours[0], theirs[0], 'pooled (legacy h5)')
    _assert_close(ours[1], theirs[1], 'grid (legacy h5)')

    def apply(p, x):
      return _apply(encoder, p, x)

    _, params3, _ = converters.convert('resnet50', 'keras', keras3)
    _assert_close(apply(params3, images)[0], theirs[0], 'pooled (keras 3)')
    # keras-applications' first resnet50.py: res2a_branch2a names and batch
    # norm epsilon 1e-3 (the same variances, stored shifted to compensate).
    old = os.path.join(self.dir, 'resnet50_old_names.h5')
    _rename_to_legacy_resnet(legacy, old)
    _, params_old, _ = converters.convert('resnet50', 'keras', old)
    _assert_close(apply(params_old, images)[0], theirs[0], 'pooled (old)')
    with self.assertRaisesRegex(converters.ConversionError,
                                'stage 4|conv4_block7'):
      converters.convert('resnet101', 'keras', legacy)
    with self.assertRaisesRegex(converters.ConversionError, 'block1_conv1'):
      converters.convert('vgg16', 'keras', keras3)
    truncated = os.path.join(self.dir, 'truncated.h5')
    with open(legacy, 'rb') as f:
      data = f.read()
    with open(truncated, 'wb') as f:
      f.write(data[:len(data) // 2])
    with self.assertRaisesRegex(converters.ConversionError, 'truncated.h5'):
      converters.convert('resnet50', 'keras', truncated)

  def test_inception_v3_keras3_weights(self):
    size = 75  # Keras's smallest Inception-v3 input
    model = _keras_model(keras.applications.InceptionV3, size)
    path = os.path.join(self.dir, 'inception_v3.weights.h5')
    model.save_weights(path)
    images = _images(size)
    theirs = _keras_features(
        model, keras.applications.inception_v3.preprocess_input(
            images.astype(np.float32)), 'mixed10')
    _, _, _, ours = _convert_and_apply('inception_v3', 'keras', path, images)
    _assert_close(ours[0], theirs[0], 'pooled')
    _assert_close(ours[1], theirs[1], 'mixed10 grid')


KERAS1_NAMES = {'kernel': 'W', 'bias': 'b', 'gamma': 'gamma', 'beta': 'beta',
                'moving_mean': 'running_mean', 'moving_variance': 'running_std'}


def _rename_to_legacy_resnet(source, target):
  """Rewrites a resnet_common legacy h5 in keras-applications' old layer
  names (res2a_branch2a) and Keras 1 weight names (res2a_branch2a_W_1:0)."""
  def old_name(name):
    if name in ('conv1_conv', 'conv1_bn'):
      return 'conv1' if name.endswith('conv') else 'bn_conv1'
    parts = name.split('_')  # conv2_block1_1_conv
    if len(parts) != 4 or parts[3] not in ('conv', 'bn'):
      return name
    stage, block = parts[0][4:], int(parts[1][5:]) - 1
    branch = '1' if parts[2] == '0' else '2' + 'abc'[int(parts[2]) - 1]
    prefix = 'res' if parts[3] == 'conv' else 'bn'
    return f'{prefix}{stage}{chr(ord("a") + block)}_branch{branch}'

  with h5py.File(source, 'r') as src, h5py.File(target, 'w') as dst:
    names = []
    for name in (n.decode() if isinstance(n, bytes) else n
                 for n in src.attrs['layer_names']):
      new = old_name(name)
      names.append(new.encode())
      group = dst.create_group(new)
      weight_names = []
      for weight_name in src[name].attrs['weight_names']:
        weight_name = (weight_name.decode() if isinstance(weight_name, bytes)
                       else weight_name)
        value = src[name][weight_name][()]
        role = weight_name.split('/')[-1]
        if role == 'moving_variance':
          value = value + 1.001e-5 - 1e-3
        new_weight = f'{new}_{KERAS1_NAMES[role]}_1:0'  # Keras 1 style
        group.create_dataset(new_weight, data=value)
        weight_names.append(new_weight.encode())
      group.attrs['weight_names'] = weight_names
    dst.attrs['layer_names'] = names


def _torch_model(build, seed=0, **kwargs):
  """A torchvision model in eval mode with torchvision's random init, and
  random biases and batch-norm statistics (the init leaves them 0 and 1)."""
  torch.manual_seed(seed)
  model = build(weights=None, **kwargs).eval()
  rng = np.random.default_rng(seed)
  with torch.no_grad():
    for name, tensor in model.state_dict().items():
      if tensor.ndim != 1:
        continue
      role = name.split('.')[-1]
      value = _random_value('gamma' if role == 'weight' else role,
                            tuple(tensor.shape), rng)
      tensor.copy_(torch.from_numpy(value))
  return model


def _torch_features(model, images, grid_module, global_module):
  captured = {}
  hooks = [m.register_forward_hook(
      lambda _, __, out, key=key: captured.__setitem__(key, out))
           for key, m in (('grid', grid_module), ('global', global_module))]
  x = (images.astype(np.float32) / 255.0 - TORCH_MEAN) / TORCH_STD
  with torch.no_grad():
    model(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
  for hook in hooks:
    hook.remove()
  grid = captured['grid'].permute(0, 2, 3, 1).numpy()
  pooled = captured['global'].reshape(grid.shape[0], -1).numpy()
  return pooled, grid.reshape(grid.shape[0], -1, grid.shape[-1])


class TorchParityTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    tmp = tempfile.TemporaryDirectory()
    self.addCleanup(tmp.cleanup)
    self.dir = tmp.name

  def _save(self, model, name):
    path = os.path.join(self.dir, name)
    torch.save(model.state_dict(), path)
    return path

  def test_vgg16(self):
    size = 64  # pool5 2x2, averaged up to torch's 7x7 before fc6
    model = _torch_model(torchvision.models.vgg16)
    path = self._save(model, 'vgg16.pth')
    images = _images(size)
    theirs = _torch_features(model, images, model.features[-2],
                             model.classifier[4])
    _, _, _, ours = _convert_and_apply('vgg16', 'torch', path, images,
                                        save=False)
    _assert_close(ours[0], theirs[0], 'fc7')
    _assert_close(ours[1], theirs[1], 'conv5 grid')

  def test_resnet50_v1_5(self):
    size = 64
    model = _torch_model(torchvision.models.resnet50)
    path = self._save(model, 'resnet50.pth')
    images = _images(size)
    theirs = _torch_features(model, images, model.layer4, model.avgpool)
    _, _, _, ours = _convert_and_apply('resnet50', 'torch', path, images)
    _assert_close(ours[0], theirs[0], 'pooled')
    _assert_close(ours[1], theirs[1], 'layer4 grid')
    with self.assertRaisesRegex(converters.ConversionError,
                                'layer3 has 6 blocks'):
      converters.convert('resnet101', 'torch', path)
    with self.assertRaisesRegex(converters.ConversionError, 'inception'):
      converters.convert('inception_v3', 'torch', path)

  def test_inception_v3_transform_input(self):
    size = 75
    model = _torch_model(torchvision.models.inception_v3,
                         transform_input=True, aux_logits=True,
                         init_weights=False)
    path = self._save(model, 'inception_v3.pth')
    images = _images(size)
    theirs = _torch_features(model, images, model.Mixed_7c, model.avgpool)
    _, _, _, ours = _convert_and_apply('inception_v3', 'torch', path, images)
    _assert_close(ours[0], theirs[0], 'pooled')
    _assert_close(ours[1], theirs[1], 'Mixed_7c grid')


if __name__ == '__main__':
  absltest.main()
