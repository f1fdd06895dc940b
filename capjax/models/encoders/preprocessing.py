"""Input preprocessing of the ImageNet CNNs, chosen by the weights' origin.

`caffe`: Keras VGG and ResNet (RGB -> BGR, ImageNet mean pixel subtracted,
0-255 scale); `inception`: Keras Inception-v3 ([-1, 1]); `torch`:
torchvision (0-1 scale, ImageNet mean and standard deviation per channel).
"""

import jax
import jax.numpy as jnp

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)
MODES = ('caffe', 'inception', 'torch')


def check(mode: str) -> None:
  """Raises a one-line ValueError when `mode` is not a known preprocessing."""
  if mode not in MODES:
    raise ValueError(f'Unknown preprocessing {mode!r}: choose one of {MODES} '
                     '(the origin of the weights decides).')


def apply(mode: str, images: jax.Array) -> jax.Array:
  """images: [batch, h, w, 3] RGB in 0-255 (uint8 or float) -> float32."""
  check(mode)
  x = jnp.asarray(images).astype(jnp.float32)
  if mode == 'caffe':
    return x[..., ::-1] - jnp.asarray(CAFFE_MEAN_BGR, jnp.float32)
  if mode == 'inception':
    return x / 127.5 - 1.0
  mean = jnp.asarray(TORCH_MEAN, jnp.float32)
  std = jnp.asarray(TORCH_STD, jnp.float32)
  return (x / 255.0 - mean) / std
