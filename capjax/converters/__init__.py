"""Weight converters: Keras `.h5` and torchvision state dicts -> capjax.

`convert(arch, source, path)` returns the encoder (its fields set for the
weights' origin: preprocessing, stride placement, pooling), the float32
params and the image side; every shape is checked against the Flax encoder,
and a file that does not match is a one-line `ConversionError` naming the
layer.
"""

import functools

import jax
import numpy as np

from capjax.models import encoders
from capjax.models.encoders import checkpoint

# The side each architecture is made for (VGG from Keras: from fc6).
IMAGE_SIZE = {'vgg16': 224, 'vgg19': 224, 'resnet50': 224,
              'resnet101': 224, 'inception_v3': 299, 'alexnet': 224}
TORCH_ONLY = ('alexnet',)  # Keras applications has no AlexNet
SOURCES = ('keras', 'torch')


class ConversionError(ValueError):
  """A weights file that does not match the architecture asked for."""


def fold_batch_norm(gamma, beta, mean, variance, epsilon, conv_bias=None):
  """Batch norm at inference as (scale, bias) per channel, float32.

  y = gamma * (x + conv_bias - mean) / sqrt(variance + epsilon) + beta.
  """
  mean = np.asarray(mean, np.float64)
  if conv_bias is not None:
    mean = mean - np.asarray(conv_bias, np.float64)
  scale = np.asarray(gamma, np.float64) / np.sqrt(
      np.asarray(variance, np.float64) + epsilon)
  bias = np.asarray(beta, np.float64) - mean * scale
  return {'scale': scale.astype(np.float32), 'bias': bias.astype(np.float32)}


def check_shapes(arch: str, encoder, params, image_size: int, path: str):
  """Raises ConversionError unless `params` has the encoder's shapes."""
  want = expected_shapes(encoder, image_size)
  got = _flat(params)
  for name in want:
    if name not in got:
      raise ConversionError(f'{path}: no weights for {arch} layer {name} '
                            '(a truncated file or another architecture?).')
    if tuple(got[name].shape) != tuple(want[name].shape):
      raise ConversionError(
          f'{path}: {arch} layer {name} has shape {tuple(got[name].shape)} '
          f'in the file, {tuple(want[name].shape)} expected (another '
          'architecture?).')
  extra = sorted(set(got) - set(want))
  if extra:
    raise ConversionError(f'{path}: unexpected weights {extra[:3]} for {arch}.')


@functools.lru_cache(maxsize=16)
def expected_shapes(encoder, image_size: int) -> dict:
  """{'layer/param': ShapeDtypeStruct} of the encoder's params (traced once)."""
  images = jax.ShapeDtypeStruct((1, image_size, image_size, 3), np.uint8)
  return _flat(jax.eval_shape(encoder.init, jax.random.key(0), images))


def _flat(tree) -> dict:
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {'/'.join(str(getattr(k, 'key', k)) for k in path): leaf
          for path, leaf in leaves}


def convert(arch: str, source: str, path: str):
  """Converts a weights file.

  Args:
    arch: 'vgg16', 'vgg19', 'resnet50', 'resnet101', 'inception_v3' or
      'alexnet' (torch only).
    source: 'keras' (legacy `.h5` or Keras 3 `.weights.h5`) or 'torch' (a
      torchvision state dict).
    path: the file.

  Returns:
    (encoder, params, image_size).
  """
  from capjax.converters import keras_h5  # pylint: disable=g-import-not-at-top
  from capjax.converters import torchvision_state  # pylint: disable=g-import-not-at-top
  if arch not in IMAGE_SIZE:
    raise ConversionError(f'Unknown arch {arch!r}: choose one of '
                          f'{sorted(IMAGE_SIZE)}.')
  if source not in SOURCES:
    raise ConversionError(f'Unknown source {source!r}: choose one of '
                          f'{SOURCES}.')
  if source == 'keras' and arch in TORCH_ONLY:
    raise ConversionError(f'Keras has no {arch}: convert torchvision weights '
                          'with --source=torch.')
  module = keras_h5 if source == 'keras' else torchvision_state
  fields, params, image_size = module.convert(arch, path)
  encoder = encoders.ENCODERS[arch](**fields)
  check_shapes(arch, encoder, params, image_size, path)
  return encoder, params, image_size


def convert_to_directory(arch: str, source: str, path: str,
                         output: str) -> dict:
  """Converts `path` and writes a capjax encoder checkpoint to `output`.

  Returns:
    A short summary: arch, parameter count, image size and the encoder's
    fields.
  """
  encoder, params, image_size = convert(arch, source, path)
  fields = {k: v for k, v in vars(encoder).items() if k != 'dtype'}
  checkpoint.save(output, arch, fields, params, source=source,
                  image_size=image_size, origin=path)
  count = sum(x.size for x in jax.tree.leaves(params))
  return {'arch': arch, 'params': int(count), 'image_size': image_size,
          **fields}
