"""Inception-v3 (Szegedy et al.): pooled 2048 and the mixed-10 grid.

The 94 conv + batch-norm units are named `unit00` .. `unit93` in the order
both Keras and torchvision create them, which is the order the converters
fill them in.
"""

import dataclasses

from flax import linen as nn
import jax
import jax.numpy as jnp

from capjax.models.encoders import layers

NUM_UNITS = 94


class InceptionV3Net(nn.Module):
  """The stem and mixed blocks 0-10 (Keras names; torchvision 5b .. 7c)."""

  pool_counts_padding: bool
  dtype: str

  @nn.compact
  def __call__(self, x: jax.Array):
    """x: [batch, h, w, 3] preprocessed (299 px in the paper).

    Returns:
      pooled [batch, 2048] and mixed 10 [batch, 8, 8, 2048] at 299 px.
    """
    count = iter(range(NUM_UNITS))

    def unit(inputs, features, rows, cols, strides=1, padding='SAME'):
      return layers.ConvBN(features, (rows, cols), strides, padding,
                           dtype=self.dtype, name=f'unit{next(count):02d}')(
                               inputs)

    def avg_pool(inputs):
      return layers.avg_pool_3x3_same(inputs, self.pool_counts_padding)

    x = unit(x, 32, 3, 3, 2, 'VALID')
    x = unit(x, 32, 3, 3, 1, 'VALID')
    x = unit(x, 64, 3, 3)
    x = layers.max_pool(x, 3, 2)
    x = unit(x, 80, 1, 1, 1, 'VALID')
    x = unit(x, 192, 3, 3, 1, 'VALID')
    x = layers.max_pool(x, 3, 2)
    for pool_features in (32, 64, 64):  # mixed 0-2 (torchvision InceptionA)
      b1 = unit(x, 64, 1, 1)
      b5 = unit(unit(x, 48, 1, 1), 64, 5, 5)
      b3 = unit(unit(unit(x, 64, 1, 1), 96, 3, 3), 96, 3, 3)
      bp = unit(avg_pool(x), pool_features, 1, 1)
      x = jnp.concatenate([b1, b5, b3, bp], axis=-1)
    # mixed 3 (InceptionB)
    b3 = unit(x, 384, 3, 3, 2, 'VALID')
    bd = unit(unit(unit(x, 64, 1, 1), 96, 3, 3), 96, 3, 3, 2, 'VALID')
    x = jnp.concatenate([b3, bd, layers.max_pool(x, 3, 2)], axis=-1)
    for c7 in (128, 160, 160, 192):  # mixed 4-7 (InceptionC)
      b1 = unit(x, 192, 1, 1)
      b7 = unit(unit(unit(x, c7, 1, 1), c7, 1, 7), 192, 7, 1)
      bd = unit(x, c7, 1, 1)
      bd = unit(unit(bd, c7, 7, 1), c7, 1, 7)
      bd = unit(unit(bd, c7, 7, 1), 192, 1, 7)
      bp = unit(avg_pool(x), 192, 1, 1)
      x = jnp.concatenate([b1, b7, bd, bp], axis=-1)
    # mixed 8 (InceptionD)
    b3 = unit(unit(x, 192, 1, 1), 320, 3, 3, 2, 'VALID')
    b7 = unit(unit(unit(x, 192, 1, 1), 192, 1, 7), 192, 7, 1)
    b7 = unit(b7, 192, 3, 3, 2, 'VALID')
    x = jnp.concatenate([b3, b7, layers.max_pool(x, 3, 2)], axis=-1)
    for _ in range(2):  # mixed 9-10 (InceptionE)
      b1 = unit(x, 320, 1, 1)
      b3 = unit(x, 384, 1, 1)
      b3 = jnp.concatenate([unit(b3, 384, 1, 3), unit(b3, 384, 3, 1)], -1)
      bd = unit(unit(x, 448, 1, 1), 384, 3, 3)
      bd = jnp.concatenate([unit(bd, 384, 1, 3), unit(bd, 384, 3, 1)], -1)
      bp = unit(avg_pool(x), 192, 1, 1)
      x = jnp.concatenate([b1, b3, bd, bp], axis=-1)
    return x.mean(axis=(1, 2)), x


@dataclasses.dataclass(frozen=True)
class InceptionV3(layers.ModuleEncoder):
  """Inception-v3 encoder: global [batch, 2048], grid [batch, L, 2048].

  Attributes:
    preprocessing: 'inception' (Keras weights, [-1, 1]) or 'torch'
      (torchvision, ImageNet mean and std).
    pool_counts_padding: the branch average pools divide by 9 at the borders
      too (torchvision) rather than by the real pixels (Keras).
    dtype: 'float32' or 'bfloat16' conv inputs.
  """

  preprocessing: str = 'inception'
  pool_counts_padding: bool = False
  dtype: str = 'float32'

  def __post_init__(self):
    self.check()

  def module(self) -> InceptionV3Net:
    return InceptionV3Net(self.pool_counts_padding, self.dtype)
