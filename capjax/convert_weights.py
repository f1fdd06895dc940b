r"""Converts a user's CNN weights to a capjax encoder checkpoint.

  python -m capjax.convert_weights --arch=vgg16 --source=keras \
      --input=vgg16_weights_tf_dim_ordering_tf_kernels.h5 --output=weights/vgg16
  python -m capjax.convert_weights --arch=resnet50 --source=torch \
      --input=resnet50-0676ba61.pth --output=weights/resnet50

--source=keras reads keras-applications' legacy `.h5` files and Keras 3
`.weights.h5`; --source=torch reads torchvision state dicts (needs torch).
The output directory (see `capjax/models/encoders/checkpoint.py`) is what
`python -m capjax.extract_features --weights=DIR` reads.
"""

import sys

from absl import app
from absl import flags
import jax

from capjax import converters
from capjax.models.encoders import checkpoint

_ARCH = flags.DEFINE_enum('arch', None, sorted(converters.IMAGE_SIZE),
                          'The architecture of the weights.')
_SOURCE = flags.DEFINE_enum('source', None, list(converters.SOURCES),
                            'The framework that wrote the file.')
_INPUT = flags.DEFINE_string('input', None, 'The weights file.')
_OUTPUT = flags.DEFINE_string('output', None, 'The checkpoint directory.')
flags.mark_flags_as_required(['arch', 'source', 'input', 'output'])


def convert_to_directory(arch: str, source: str, path: str,
                         output: str) -> dict:
  """Converts `path` and writes the checkpoint; returns a short summary."""
  encoder, params, image_size = converters.convert(arch, source, path)
  fields = {k: v for k, v in vars(encoder).items() if k != 'dtype'}
  checkpoint.save(output, arch, fields, params, source=source,
                  image_size=image_size, origin=path)
  count = sum(x.size for x in jax.tree.leaves(params))
  return {'arch': arch, 'params': int(count), 'image_size': image_size,
          **fields}


def main(argv):
  del argv
  try:
    summary = convert_to_directory(_ARCH.value, _SOURCE.value, _INPUT.value,
                                   _OUTPUT.value)
  except converters.ConversionError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
  print(f'{_OUTPUT.value}: ' + ', '.join(f'{k}={v}' for k, v in
                                          summary.items()))


if __name__ == '__main__':
  app.run(main)
