r"""Converts a user's CNN weights to a capjax encoder checkpoint.

  python -m capjax.convert_weights --arch=vgg16 --source=keras \
      --input=vgg16_weights_tf_dim_ordering_tf_kernels.h5 --output=weights/vgg16
  python -m capjax.convert_weights --arch=resnet50 --source=torch \
      --input=resnet50-0676ba61.pth --output=weights/resnet50
  python -m capjax.convert_weights --arch=alexnet --source=torch \
      --input=alexnet-owt-7be5be79.pth --output=weights/alexnet

--source=keras reads keras-applications' legacy `.h5` files and Keras 3
`.weights.h5`; --source=torch reads torchvision state dicts (needs torch).
AlexNet has torchvision weights only (Keras has no AlexNet).
The output directory (see `capjax/models/encoders/checkpoint.py`) is what
`python -m capjax.extract_features --weights=DIR` reads.
"""

import sys

from absl import app
from absl import flags

from capjax import converters

_ARCH = flags.DEFINE_enum('arch', None, sorted(converters.IMAGE_SIZE),
                          'The architecture of the weights.')
_SOURCE = flags.DEFINE_enum('source', None, list(converters.SOURCES),
                            'The framework that wrote the file.')
_INPUT = flags.DEFINE_string('input', None, 'The weights file.')
_OUTPUT = flags.DEFINE_string('output', None, 'The checkpoint directory.')
flags.mark_flags_as_required(['arch', 'source', 'input', 'output'])


def main(argv):
  del argv
  try:
    summary = converters.convert_to_directory(
        _ARCH.value, _SOURCE.value, _INPUT.value, _OUTPUT.value)
  except converters.ConversionError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
  print(f'{_OUTPUT.value}: ' + ', '.join(f'{k}={v}' for k, v in
                                          summary.items()))


if __name__ == '__main__':
  app.run(main)
