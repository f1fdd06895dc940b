r"""VGG-16 fc7 features of Flickr8k, the m-RNN paper's 10-crop average.

With a user's Keras (or torchvision) VGG-16 weights:

  python -m capjax.convert_weights --arch=vgg16 --source=keras \
      --input=vgg16_weights_tf_dim_ordering_tf_kernels.h5 \
      --output=weights/vgg16
  python -m capjax.extract_features \
      --config=configs/features/flickr8k_vgg16.py \
      --workdir=runs/flickr8k_vgg16 \
      --config.dataset.manual_dir=PATH/TO/Flickr8k

writes `runs/flickr8k_vgg16/features/`: per split float16 fc7 vectors
[N, 4096] (after its ReLU), each the mean over the ten 224 px crops (four
corners and the centre of the photo resized to a 256 px shorter side, and
their mirror images); with `grid` also conv5_3 [N, 196, 512].
Train on them with `configs/captioning/flickr8k_features.py:features=vgg16`.

Variants after a colon, comma-separated:
  tiny    one split (test, 125 photos of the subset), one crop, small batches
  grid    also store the conv5_3 grid (14 x 14 x 512 per photo)
"""

from capjax import config_base

VARIANTS = ('tiny', 'grid')


def get_config(arg=None):
  """The extraction config; `arg` selects variants (module docstring)."""
  flags, values = config_base.parse_arg(arg)
  config_base.check_known('variant', flags, VARIANTS)
  config_base.check_known('key', values, ())
  c = config_base.base_config()
  c.dataset.name = 'flickr8k'
  c.dataset.manual_dir = '../shared/data/flickr8k_1k'
  c.features.weights = 'weights/vgg16'
  c.features.crop = 'ten'
  c.features.size = 224
  c.features.short_side = 256
  c.features.grid = 'grid' in flags
  c.features.batch = 16  # photos per step: 160 crops
  c.features.chunk = 128
  if 'tiny' in flags:
    c.features.splits = ('test',)
    c.features.crop = 'center'
    c.features.batch = 8
    c.features.chunk = 32
  return c
