"""Inference layers of the ImageNet CNNs: convs, frozen batch norm, pools.

Weights stay float32; with `dtype=bfloat16` the conv and dense inputs are
cast to bfloat16 and accumulated in float32 (`preferred_element_type`), so
every layer returns float32 and the elementwise work stays exact.
"""

from typing import Sequence

from flax import linen as nn
import jax
from jax import lax
import jax.numpy as jnp

from capjax.models.encoders import preprocessing

IMAGE_AXES = ('NHWC', 'HWIO', 'NHWC')
# Plain (untruncated) normals: converted weights replace them anyway, and
# they trace and run much faster than truncated ones in these deep nets.
HE_NORMAL = nn.initializers.variance_scaling(2.0, 'fan_in',
                                             'normal')
LECUN_NORMAL = nn.initializers.variance_scaling(1.0, 'fan_in',
                                                'normal')


def _pad(padding, kernel, strides):
  """'SAME' | 'VALID' | int -> lax padding pairs."""
  if isinstance(padding, str):
    return padding
  return [(padding, padding)] * len(kernel)


class Conv(nn.Module):
  """A 2-D convolution; kernel [kh, kw, in, out] (HWIO), optional bias."""

  features: int
  kernel: Sequence[int] = (3, 3)
  strides: int = 1
  padding: str | int = 'SAME'
  use_bias: bool = True
  dtype: str = 'float32'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """[batch, h, w, in] -> [batch, h', w', features] float32."""
    kernel = self.param(
        'kernel', HE_NORMAL,
        (*self.kernel, x.shape[-1], self.features), jnp.float32)
    y = lax.conv_general_dilated(
        x.astype(self.dtype), kernel.astype(self.dtype),
        window_strides=(self.strides, self.strides),
        padding=_pad(self.padding, self.kernel, self.strides),
        dimension_numbers=IMAGE_AXES,
        preferred_element_type=jnp.float32)
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros, (self.features,),
                         jnp.float32)
    return y


class Dense(nn.Module):
  """x @ kernel + bias; kernel [in, out]."""

  features: int
  dtype: str = 'float32'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """[batch, in] -> [batch, features] float32."""
    kernel = self.param('kernel', LECUN_NORMAL,
                        (x.shape[-1], self.features), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (self.features,),
                      jnp.float32)
    y = lax.dot_general(
        x.astype(self.dtype), kernel.astype(self.dtype),
        (((x.ndim - 1,), (0,)), ((), ())),
        preferred_element_type=jnp.float32)
    return y + bias


class Affine(nn.Module):
  """Batch norm at inference, folded: x * scale + bias per channel.

  The converters fold gamma, beta, the moving statistics, epsilon and any
  bias of the conv before it into these two vectors.
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """[..., channels] -> [..., channels] float32."""
    channels = x.shape[-1]
    scale = self.param('scale', nn.initializers.ones, (channels,), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (channels,), jnp.float32)
    return x * scale + bias


class ConvBN(nn.Module):
  """Conv without bias, folded batch norm, optional ReLU."""

  features: int
  kernel: Sequence[int] = (3, 3)
  strides: int = 1
  padding: str | int = 'SAME'
  relu: bool = True
  dtype: str = 'float32'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """[batch, h, w, in] -> [batch, h', w', features] float32."""
    x = Conv(self.features, tuple(self.kernel), self.strides, self.padding,
             use_bias=False, dtype=self.dtype, name='conv')(x)
    x = Affine(name='bn')(x)
    return nn.relu(x) if self.relu else x


def max_pool(x: jax.Array, window: int, strides: int,
             padding: str | int = 'VALID') -> jax.Array:
  """[batch, h, w, c] -> [batch, h', w', c]; padding pads with -inf."""
  pad = padding if isinstance(padding, str) else (
      (0, 0), (padding, padding), (padding, padding), (0, 0))
  return lax.reduce_window(x, -jnp.inf, lax.max, (1, window, window, 1),
                           (1, strides, strides, 1), pad)


def avg_pool_3x3_same(x: jax.Array, count_padding: bool) -> jax.Array:
  """3x3 stride-1 average with one pixel of zero padding, same size out.

  Args:
    x: [batch, h, w, c].
    count_padding: divide by 9 everywhere (torch's `count_include_pad`), or
      by the number of real pixels under the window (Keras and TensorFlow).

  Returns:
    [batch, h, w, c].
  """
  pad = ((0, 0), (1, 1), (1, 1), (0, 0))
  total = lax.reduce_window(x, 0.0, lax.add, (1, 3, 3, 1), (1, 1, 1, 1), pad)
  if count_padding:
    return total / 9.0
  ones = jnp.ones((1, *x.shape[1:3], 1), x.dtype)
  count = lax.reduce_window(ones, 0.0, lax.add, (1, 3, 3, 1), (1, 1, 1, 1),
                            pad)
  return total / count


def adaptive_avg_pool(x: jax.Array, size: int) -> jax.Array:
  """torch's `AdaptiveAvgPool2d(size)`: [b, h, w, c] -> [b, size, size, c].

  Output cell i averages input rows floor(i * h / size) to
  ceil((i + 1) * h / size) (and likewise for columns); the identity when
  h = w = size.
  """
  _, height, width, _ = x.shape
  if (height, width) == (size, size):
    return x

  def bounds(n):
    return [(i * n // size, -(-(i + 1) * n // size)) for i in range(size)]

  rows = jnp.stack([x[:, a:b].mean(axis=1) for a, b in bounds(height)], 1)
  return jnp.stack([rows[:, :, a:b].mean(axis=2) for a, b in bounds(width)], 2)


class ModuleEncoder:
  """The `Encoder` protocol over a linen module built by `module()`.

  Subclasses are frozen dataclasses with the fields `preprocessing` and
  `dtype` and a `module()` whose `__call__(x)` takes preprocessed float32
  images and returns (global [batch, dim], grid [batch, h, w, channels]).
  """

  preprocessing: str
  dtype: str

  def module(self) -> nn.Module:
    raise NotImplementedError

  def check(self) -> None:
    """One-line errors for bad fields (called by `__post_init__`)."""
    preprocessing.check(self.preprocessing)
    if self.dtype not in ('float32', 'bfloat16'):
      raise ValueError(f"Encoder dtype must be 'float32' or 'bfloat16'; got "
                       f'{self.dtype!r}.')

  def _inputs(self, images: jax.Array) -> jax.Array:
    images = jnp.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f'{type(self).__name__} takes RGB images [batch, '
                       f'height, width, 3]; got shape {images.shape}.')
    return preprocessing.apply(self.preprocessing, images)

  def init(self, rng: jax.Array, images: jax.Array) -> dict:
    """images: [batch, h, w, 3] RGB 0-255 -> random float32 parameters."""
    return self.module().init(rng, self._inputs(images))['params']

  def apply(self, params: dict, images: jax.Array):
    """images: [batch, h, w, 3] RGB 0-255 (uint8 or float).

    Returns:
      global: [batch, dim] float32; grid: [batch, h' * w', channels] float32.
    """
    global_feature, grid = self.module().apply(
        {'params': params}, self._inputs(images))
    return global_feature, grid.reshape(grid.shape[0], -1, grid.shape[-1])
