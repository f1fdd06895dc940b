r"""Image-text retrieval on Flickr8k photos (seed 004's dataset).

  python -m capjax.main \
      --config=configs/retrieval/flickr8k.py:model=multi_bilstm \
      --workdir=runs/ret_f8k \
      --config.dataset.manual_dir=/path/to/Flickr8k

`dataset.manual_dir` holds the official release (default: the 1000-photo
subset in ../shared/data/flickr8k_1k, 753 train / 125 test images). The
photos are read at 96 px by the small CNN trained from scratch: a weak
image side until pretrained features (the "real photographs" issue) can be
plugged in through the identity encoder.

Variants after a colon, as in configs/retrieval/shapes.py: `tiny`,
`model=alignment|lstm|bilstm|multi_bilstm`, `loss=xent|hinge|hardest`, and
`features=DIR`: the BiLSTM paper's setup on precomputed VGG-16 fc7
features (a folder from `python -m capjax.extract_features
--config=configs/features/flickr8k_vgg16.py --workdir=RUN`, i.e.
RUN/features) read by the identity encoder instead of pixels.
"""

import os

import ml_collections

from capjax import config_base
from configs.retrieval import shapes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SHARED_FLICKR = os.path.join(ROOT, '..', 'shared', 'data', 'flickr8k_1k')


def get_config(arg=None):
  """The Flickr8k retrieval config; `arg` as in configs/retrieval/shapes.py."""
  flags, values = config_base.parse_arg(arg)
  features = values.pop('features', '')
  c = shapes.get_config(','.join(
      sorted(flags) + [f'{k}={v}' for k, v in values.items()]))
  tiny = 'tiny' in flags
  c.dataset.name = 'flickr8k'
  c.dataset.builder_config = 'default'
  c.dataset.manual_dir = os.path.normpath(SHARED_FLICKR)
  c.dataset.image_size = 96
  c.dataset.max_len = 24
  c.dataset.min_count = 2  # rare words become UNK
  # A 6x6 grid at 96 px (tiny has two conv layers, not four).
  c.model.encoder.strides = (4, 4) if tiny else (2, 2, 2, 2)
  c.train.num_steps = 6 if tiny else 300
  c.eval.batch_size = 16 if tiny else 25  # 125 test images
  if features:
    c.dataset.features = features
    c.model.encoder = ml_collections.ConfigDict({'name': 'identity'})
  return c
