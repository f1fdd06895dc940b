"""AlexNet (Krizhevsky et al.; torchvision's layout): fc7 and the conv5 grid.

torchvision's single-tower AlexNet, the m-RNN paper's second CNN: five convs
(11x11 stride 4, 5x5, then three 3x3; 64, 192, 384, 256, 256 channels) with
3x3 stride-2 max pools after conv1, conv2 and conv5, an adaptive average
pool of pool5 to 6x6, then fc6 and fc7 (4096 each). Global = fc7 after its
ReLU; grid = conv5 after its ReLU and before pool5: 13x13x256 at 224 px (the
finer of the two candidate grids; the 6x6 pool5 is one max pool away). Only
torchvision weights exist for it (Keras has no AlexNet).
"""

import dataclasses

from flax import linen as nn
import jax

from capjax.models.encoders import layers

# (channels, kernel, stride, padding) of conv1..conv5.
CONVS = ((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1),
         (256, 3, 1, 1))
POOL_AFTER = (1, 2, 5)  # convs followed by a 3x3 stride-2 max pool
POOL_TO = 6  # torchvision's AdaptiveAvgPool2d((6, 6)) before fc6
FC_DIM = 4096


class AlexNetModule(nn.Module):
  """The conv stack, then fc6 and fc7 over the flattened (H, W, C) pool."""

  pool_to: int
  dtype: str

  @nn.compact
  def __call__(self, x: jax.Array):
    """x: [batch, h, w, 3] preprocessed.

    Returns:
      fc7 [batch, 4096] (after its ReLU) and conv5's output [batch, h', w',
      256] (after its ReLU, before pool5; 13x13 at 224 px).
    """
    grid = None
    for index, (channels, kernel, stride, padding) in enumerate(CONVS, 1):
      x = layers.Conv(channels, (kernel, kernel), stride, padding,
                      dtype=self.dtype, name=f'conv{index}')(x)
      x = nn.relu(x)
      grid = x
      if index in POOL_AFTER:
        x = layers.max_pool(x, 3, 2)
    if self.pool_to:
      x = layers.adaptive_avg_pool(x, self.pool_to)
    x = x.reshape(x.shape[0], -1)
    x = nn.relu(layers.Dense(FC_DIM, dtype=self.dtype, name='fc6')(x))
    x = nn.relu(layers.Dense(FC_DIM, dtype=self.dtype, name='fc7')(x))
    return x, grid


@dataclasses.dataclass(frozen=True)
class AlexNet(layers.ModuleEncoder):
  """AlexNet encoder: global = fc7 [batch, 4096], grid = conv5 [batch, L, 256].

  Attributes:
    preprocessing: 'torch' (torchvision's weights; ImageNet mean and std).
    pool_to: the adaptive average pool of pool5 before fc6 (6, so fc6 takes
      6 x 6 x 256 at any input side of at least 63 px); 0: none.
    dtype: 'float32' or 'bfloat16' conv and matmul inputs.
  """

  preprocessing: str = 'torch'
  pool_to: int = POOL_TO
  dtype: str = 'float32'

  def __post_init__(self):
    self.check()

  def module(self) -> AlexNetModule:
    return AlexNetModule(self.pool_to, self.dtype)
