r"""Writes a keras.applications CNN with random weights (for demos).

  KERAS_BACKEND=jax python launch/write_random_keras_weights.py \
      --arch=inception_v3 --output=runs/inception_v3_random.weights.h5

Nothing can be downloaded here, so the Flickr8k demo
(`launch/flickr8k_demo.sh`) runs the pipeline on Keras's own random
initialisation (`weights=None`), saved in Keras 3's `.weights.h5` format,
which `python -m capjax.convert_weights --source=keras` reads like a user's
real file. Features of random weights barely depend on the photo.
"""

import argparse
import os

os.environ.setdefault('KERAS_BACKEND', 'jax')

import keras  # pylint: disable=g-import-not-at-top

BUILDERS = {
    'inception_v3': keras.applications.InceptionV3,
    'vgg16': keras.applications.VGG16,
    'vgg19': keras.applications.VGG19,
    'resnet50': keras.applications.ResNet50,
    'resnet101': keras.applications.ResNet101,
}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--arch', required=True, choices=sorted(BUILDERS))
  parser.add_argument('--output', required=True,
                      help='the .weights.h5 file to write')
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()
  if not args.output.endswith('.weights.h5'):
    parser.error(f'--output={args.output} must end in .weights.h5 (Keras 3).')
  keras.utils.set_random_seed(args.seed)
  model = BUILDERS[args.arch](weights=None)
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  partial = args.output[:-len('.weights.h5')] + '.partial.weights.h5'
  model.save_weights(partial)
  os.replace(partial, args.output)  # a killed run leaves no half file
  print(f'{args.output}: {args.arch}, {model.count_params():,} random '
        'parameters')


if __name__ == '__main__':
  main()
