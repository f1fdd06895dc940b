"""A small CNN trained from scratch, for the built-in dataset and tests."""

import dataclasses
from typing import Sequence

import einops
from flax import linen as nn
import jax
import jax.numpy as jnp

from capjax.models import precision


def coordinate_channels(batch: int, height: int, width: int) -> jax.Array:
  """[batch, height, width, 2] x and y coordinates in [-1, 1]."""
  ys = jnp.linspace(-1.0, 1.0, height)
  xs = jnp.linspace(-1.0, 1.0, width)
  grid = jnp.stack(jnp.meshgrid(xs, ys, indexing='xy'), axis=-1)
  return jnp.broadcast_to(grid, (batch, height, width, 2))


def patches_3x3(x: jax.Array, stride: int) -> jax.Array:
  """The 3x3 neighbourhood of every output position, stacked on channels.

  Args:
    x: [batch, height, width, channels].
    stride: 1 or 2.

  Returns:
    [batch, ceil(height / stride), ceil(width / stride), 9 * channels], with
    zero padding of one pixel on every side.
  """
  _, height, width, _ = x.shape
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  out_h, out_w = -(-height // stride), -(-width // stride)
  rows, cols = stride * out_h, stride * out_w
  shifted = [
      padded[:, i : i + rows : stride, j : j + cols : stride]
      for i in range(3)
      for j in range(3)
  ]
  return jnp.concatenate(shifted, axis=-1)


class Conv3x3(nn.Module):
  """A 3x3 convolution written as patches + one matmul.

  On CPUs XLA runs a dense matmul several times faster than its convolution
  (and its convolution's gradients); the patches cost only slicing, whose
  gradient is padding and addition.
  """

  features: int
  stride: int = 1
  dtype: str = 'float32'  # matmul compute dtype (model.dtype)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """[batch, h, w, c] -> [batch, h / stride, w / stride, features]."""
    # He init: the layers feed ReLUs (it shortens the plateau before a
    # from-scratch CNN starts telling shapes apart).
    dense = precision.dense(
        self.features, self.dtype, kernel_init=nn.initializers.he_normal()
    )
    return dense(patches_3x3(x, self.stride))


class _ConvNet(nn.Module):
  """Conv stack -> grid of cells; global vector from the flattened grid."""

  channels: Sequence[int]
  strides: Sequence[int]
  global_dim: int
  coords: bool
  global_pool: str
  norm: bool
  dtype: str

  @nn.compact
  def __call__(self, images: jax.Array):
    x = images.astype(jnp.float32) / 127.5 - 1.0
    batch, height, width, _ = x.shape
    if self.coords:
      x = jnp.concatenate([x, coordinate_channels(batch, height, width)], -1)
    for i, (features, stride) in enumerate(zip(self.channels, self.strides)):
      x = Conv3x3(features, stride, self.dtype, name=f'conv{i}')(x)
      if self.norm:
        x = nn.LayerNorm(name=f'norm{i}')(x)
      x = nn.relu(x)
    if self.coords:
      x = jnp.concatenate(
          [x, coordinate_channels(batch, x.shape[1], x.shape[2])], -1
      )
    grid = einops.rearrange(x, 'b h w c -> b (h w) c')
    if self.global_pool == 'flatten':
      pooled = einops.rearrange(grid, 'b l c -> b (l c)')
    else:
      pooled = grid.mean(axis=1)
    # Normalised before the ReLU: without it the global feature of a trained
    # Show-and-Tell grew to values in the hundreds, saturated the LSTM gates
    # it feeds and every image got the same caption.
    global_feature = precision.dense(
        self.global_dim, self.dtype, name='global'
    )(pooled)
    global_feature = nn.relu(nn.LayerNorm(name='global_norm')(global_feature))
    return global_feature, grid


@dataclasses.dataclass(frozen=True)
class SmallCNN:
  """Pure-functional small CNN encoder.

  Attributes:
    channels: output channels of each 3x3 conv layer.
    strides: stride of each conv layer (the grid is the input size divided by
      their product).
    global_dim: size of the global feature.
    coords: append x/y coordinate channels to the input and to the grid, so
      that features know where they are (spatial relations need it).
    global_pool: 'flatten' (a dense layer over the whole grid keeps where
      things are) or 'mean' (average over cells).
    norm: LayerNorm after each conv (slower on CPUs; rarely needed this
      shallow).
    dtype: matmul compute dtype ('float32' or 'bfloat16', from model.dtype);
      parameters and outputs stay float32.
  """

  channels: Sequence[int] = (32, 64, 128)
  strides: Sequence[int] = (2, 2, 2)
  global_dim: int = 256
  coords: bool = True
  global_pool: str = 'flatten'
  norm: bool = False
  dtype: str = 'float32'

  def __post_init__(self):
    precision.compute_dtype(self.dtype)  # a one-line error if unknown
    if len(self.channels) != len(self.strides):
      raise ValueError(
          'model.encoder.channels and model.encoder.strides must have the same '
          f'length; got {tuple(self.channels)} and {tuple(self.strides)}.'
      )
    if self.global_pool not in ('flatten', 'mean'):
      raise ValueError(
          "model.encoder.global_pool must be 'flatten' or 'mean'; got "
          f'{self.global_pool!r}.'
      )

  def _module(self) -> _ConvNet:
    return _ConvNet(
        channels=tuple(self.channels),
        strides=tuple(self.strides),
        global_dim=self.global_dim,
        coords=self.coords,
        global_pool=self.global_pool,
        norm=self.norm,
        dtype=self.dtype,
    )

  def init(self, rng: jax.Array, images: jax.Array) -> dict:
    """images: [batch, height, width, 3] uint8 -> parameters."""
    return self._module().init(rng, images)['params']

  def apply(self, params: dict, images: jax.Array):
    """images: [batch, height, width, 3] uint8.

    Returns:
      global: [batch, global_dim] float32; grid: [batch, cells, channels (+2)].
    """
    return self._module().apply({'params': params}, images)
