r"""Inception-v3 features of Flickr8k (seed 000's setup: 299 px, pooled 2048).

With a user's Keras Inception-v3 weights (no download is possible here):

  python -m capjax.convert_weights --arch=inception_v3 --source=keras \
      --input=inception_v3_weights_tf_dim_ordering_tf_kernels.h5 \
      --output=weights/inception_v3
  python -m capjax.extract_features \
      --config=configs/features/flickr8k_inception_v3.py \
      --workdir=runs/flickr8k_inception_v3 \
      --config.dataset.manual_dir=PATH/TO/Flickr8k

writes `runs/flickr8k_inception_v3/features/` (every split; float16 global
vectors [N, 2048] keyed by image id), which
`configs/captioning/flickr8k_features.py` trains on. `manual_dir` holds the
official Flickr8k layout (images/, Flickr8k.token.txt, the split lists); the
default is the 1000-photo subset `../shared/data/flickr8k_1k`.

Variants after a colon, comma-separated:
  tiny    one split (test, 125 photos of the subset), small batches
  grid    also store the last mixed block's grid [N, 64, 2048] at 299 px
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
  c.features.weights = 'weights/inception_v3'
  c.features.crop = 'squash'  # the whole photo resized to 299 x 299
  c.features.size = 299
  c.features.grid = 'grid' in flags
  c.features.batch = 32
  c.features.chunk = 256
  if 'tiny' in flags:
    c.features.splits = ('test',)
    c.features.batch = 8
    c.features.chunk = 32
  return c
