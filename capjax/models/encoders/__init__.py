"""Image encoders: pure functions `init(rng, images)`, `apply(params, images)`.

An encoder turns a batch of images (or precomputed features) into a global
vector `[batch, dim]` and a grid `[batch, cells, dim]`. Encoders are chosen by
the config string `model.encoder` through `create`.
"""

import dataclasses
from typing import Any, Protocol

import jax
import ml_collections

from capjax.models.encoders import alexnet
from capjax.models.encoders import identity
from capjax.models.encoders import inception_v3
from capjax.models.encoders import resnet
from capjax.models.encoders import small_cnn
from capjax.models.encoders import vgg

Params = Any


class Encoder(Protocol):
  """The encoder contract."""

  def init(self, rng: jax.Array, images: jax.Array) -> Params:
    """Returns fresh parameters for inputs shaped like `images`."""

  def apply(
      self, params: Params, images: jax.Array
  ) -> tuple[jax.Array, jax.Array]:
    """images -> (global [batch, dim] float32, grid [batch, cells, dim])."""


ENCODERS = {
    'small_cnn': small_cnn.SmallCNN,
    'identity': identity.Identity,
    # ImageNet CNNs (weights from `python -m capjax.convert_weights`).
    'vgg16': vgg.VGG16,
    'vgg19': vgg.VGG19,
    'resnet50': resnet.ResNet50,
    'resnet101': resnet.ResNet101,
    'inception_v3': inception_v3.InceptionV3,
    'alexnet': alexnet.AlexNet,  # torchvision weights only
}


def create(config: ml_collections.ConfigDict,
           dtype: str = 'float32') -> Encoder:
  """Builds the encoder named by `config.name`.

  The other fields of `config` that the encoder has are its arguments; the
  rest belong to other encoders and are left alone. `dtype` (model.dtype) is
  the matmul compute dtype of the encoders that have matmuls.
  """
  name = config.name
  if name not in ENCODERS:
    raise ValueError(
        f'Unknown encoder {name!r}: choose one of {sorted(ENCODERS)} '
        '(config key model.encoder.name).'
    )
  encoder_class = ENCODERS[name]
  fields = {f.name for f in dataclasses.fields(encoder_class)}
  kwargs = {k: v for k, v in config.items() if k in fields}
  if 'dtype' in fields:
    kwargs['dtype'] = dtype
  return encoder_class(**kwargs)
