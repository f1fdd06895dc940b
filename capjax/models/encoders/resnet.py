"""ResNet-50 and ResNet-101 (He et al.): pooled 2048 and the last stage grid.

Two placements of the downsampling stride in a bottleneck: v1 (Keras, the
paper's Caffe models) strides the first 1x1 conv; v1.5 (torchvision) strides
the 3x3 conv. Batch norm is folded (`layers.Affine`), so the conv biases of
Keras ResNets live in the folded bias.
"""

import dataclasses

from flax import linen as nn
import jax

from capjax.models.encoders import layers

# Bottleneck blocks per stage (conv2_x .. conv5_x).
STAGES = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
WIDTHS = (64, 128, 256, 512)
EXPANSION = 4
STRIDE_ON = ('1x1', '3x3')


class Bottleneck(nn.Module):
  """1x1 -> 3x3 -> 1x1 (x4 channels), plus a projection when shapes change."""

  width: int
  strides: int
  project: bool
  stride_on: str
  dtype: str

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """[batch, h, w, c] -> [batch, h / strides, w / strides, 4 * width]."""
    first, middle = ((self.strides, 1) if self.stride_on == '1x1'
                     else (1, self.strides))
    y = layers.ConvBN(self.width, (1, 1), first, 'VALID', dtype=self.dtype,
                      name='conv1')(x)
    y = layers.ConvBN(self.width, (3, 3), middle, 1, dtype=self.dtype,
                      name='conv2')(y)
    y = layers.ConvBN(EXPANSION * self.width, (1, 1), 1, 'VALID', relu=False,
                      dtype=self.dtype, name='conv3')(y)
    if self.project:
      x = layers.ConvBN(EXPANSION * self.width, (1, 1), self.strides,
                        'VALID', relu=False, dtype=self.dtype,
                        name='shortcut')(x)
    return nn.relu(x + y)


class ResNetNet(nn.Module):
  """Stem (7x7/2 conv, 3x3/2 max pool) and four stages of bottlenecks."""

  depth: int
  stride_on: str
  dtype: str

  @nn.compact
  def __call__(self, x: jax.Array):
    """x: [batch, h, w, 3] preprocessed.

    Returns:
      pooled [batch, 2048] and the last stage [batch, h / 32, w / 32, 2048].
    """
    x = layers.ConvBN(64, (7, 7), 2, 3, dtype=self.dtype, name='stem')(x)
    x = layers.max_pool(x, 3, 2, 1)  # after a ReLU: -inf and 0 pads agree
    for stage, (blocks, width) in enumerate(zip(STAGES[self.depth], WIDTHS)):
      for block in range(blocks):
        strides = 2 if block == 0 and stage > 0 else 1
        x = Bottleneck(width, strides, block == 0, self.stride_on, self.dtype,
                       name=f'stage{stage + 2}_block{block + 1}')(x)
    return x.mean(axis=(1, 2)), x


@dataclasses.dataclass(frozen=True)
class ResNet(layers.ModuleEncoder):
  """ResNet encoder: global = average pool [batch, 2048], grid [batch, L, 2048].

  Attributes:
    depth: 50 or 101.
    preprocessing: 'caffe' (Keras weights) or 'torch' (torchvision).
    stride_on: '1x1' (v1, Keras) or '3x3' (v1.5, torchvision).
    dtype: 'float32' or 'bfloat16' conv and matmul inputs.
  """

  depth: int = 50
  preprocessing: str = 'caffe'
  stride_on: str = '1x1'
  dtype: str = 'float32'

  def __post_init__(self):
    if self.depth not in STAGES:
      raise ValueError(f'ResNet depth must be one of {sorted(STAGES)}; got '
                       f'{self.depth}.')
    if self.stride_on not in STRIDE_ON:
      raise ValueError(f'ResNet stride_on must be one of {STRIDE_ON}; got '
                       f'{self.stride_on!r}.')
    self.check()

  def module(self) -> ResNetNet:
    return ResNetNet(self.depth, self.stride_on, self.dtype)


@dataclasses.dataclass(frozen=True)
class ResNet50(ResNet):
  depth: int = 50


@dataclasses.dataclass(frozen=True)
class ResNet101(ResNet):
  depth: int = 101
