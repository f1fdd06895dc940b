"""VGG-16 and VGG-19 (Simonyan and Zisserman): fc7 and the conv5 grid."""

import dataclasses

from flax import linen as nn
import jax

from capjax.models.encoders import layers

# Convs per block (channels 64, 128, 256, 512, 512).
BLOCKS = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
CHANNELS = (64, 128, 256, 512, 512)
FC_DIM = 4096


class VGGNet(nn.Module):
  """Conv blocks, then fc6 and fc7 over the flattened pool5 (H, W, C order)."""

  depth: int
  pool_to: int
  dtype: str

  @nn.compact
  def __call__(self, x: jax.Array):
    """x: [batch, h, w, 3] preprocessed.

    Returns:
      fc7 [batch, 4096] (after its ReLU) and conv5's last output
      [batch, h / 16, w / 16, 512] (after its ReLU, before pool5).
    """
    grid = None
    for block, (convs, channels) in enumerate(zip(BLOCKS[self.depth],
                                                  CHANNELS), 1):
      if block > 1:
        x = layers.max_pool(x, 2, 2)
      for i in range(1, convs + 1):
        x = layers.Conv(channels, dtype=self.dtype,
                        name=f'conv{block}_{i}')(x)
        x = nn.relu(x)
      grid = x
    x = layers.max_pool(x, 2, 2)
    if self.pool_to:
      x = layers.adaptive_avg_pool(x, self.pool_to)
    x = x.reshape(x.shape[0], -1)
    x = nn.relu(layers.Dense(FC_DIM, dtype=self.dtype, name='fc6')(x))
    x = nn.relu(layers.Dense(FC_DIM, dtype=self.dtype, name='fc7')(x))
    return x, grid


@dataclasses.dataclass(frozen=True)
class VGG(layers.ModuleEncoder):
  """VGG encoder: global = fc7 [batch, 4096], grid = conv5 [batch, L, 512].

  Attributes:
    depth: 16 or 19.
    preprocessing: 'caffe' (Keras weights) or 'torch' (torchvision).
    pool_to: torchvision's adaptive average pool of pool5 to this side
      before fc6 (7; the identity at 224 px); 0: none (Keras), so fc6's input
      size follows the image size.
    dtype: 'float32' or 'bfloat16' conv and matmul inputs.
  """

  depth: int = 16
  preprocessing: str = 'caffe'
  pool_to: int = 0
  dtype: str = 'float32'

  def __post_init__(self):
    if self.depth not in BLOCKS:
      raise ValueError(f'VGG depth must be one of {sorted(BLOCKS)}; got '
                       f'{self.depth}.')
    self.check()

  def module(self) -> VGGNet:
    return VGGNet(self.depth, self.pool_to, self.dtype)


@dataclasses.dataclass(frozen=True)
class VGG16(VGG):
  depth: int = 16


@dataclasses.dataclass(frozen=True)
class VGG19(VGG):
  depth: int = 19

