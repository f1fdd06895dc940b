r"""The m-RNN (Mao et al., ICLR 2015) on Flickr8k photographs.

  python -m capjax.main --config=configs/mrnn/flickr8k.py \
      --workdir=runs/mrnn_flickr8k \
      --config.dataset.manual_dir=../shared/data/flickr8k_1k

`manual_dir` holds the official Flickr8k layout (images/, Flickr8k.token.txt
and the split lists); `../shared/data/flickr8k_1k` is its 1000-photo subset.
The paper's sizes (embeddings 128 / 256, multimodal 512); the image side is
capjax's small CNN trained from scratch (no pretrained weights can be
fetched here), so expect figures far below the paper's VGG ones.

Variants after a colon, comma-separated:
  tiny               a seconds-long run for tests
  variant=NAME       as in configs/mrnn/shapes.py
  cnn=vgg16|alexnet  the paper's image side: an ImageNet CNN at 224 px whose
                     fc7 (4096) feeds the multimodal layer, frozen as in the
                     paper ("we fix ... the deep CNN network")
  weights=DIR        its weights, converted by `python -m
                     capjax.convert_weights --arch=vgg16|alexnet` (without
                     it the CNN is random: the pipeline runs, the captions
                     are poor)
  finetune           train the CNN too (the paper's future work), at 0.1x
                     the learning rate (optimizer.encoder_lr_multiplier)

e.g. the VGG setup fine-tuned:
  python -m capjax.main --workdir=runs/mrnn_flickr8k_vgg16_finetune \
      --config=configs/mrnn/flickr8k.py:cnn=vgg16,finetune,weights=w/vgg16
"""

from capjax import config_base
from capjax.models.captioners import mrnn

VARIANTS = ('tiny', 'finetune')
VALUES = ('variant', 'cnn', 'weights')
CNNS = ('vgg16', 'alexnet')
FINETUNE_LR_MULTIPLIER = 0.1


def get_config(arg=None):
  """The m-RNN Flickr8k config; `arg` selects variants (module docstring)."""
  flags, values = config_base.parse_arg(arg)
  config_base.check_known('variant', flags, VARIANTS)
  config_base.check_known('key', values, VALUES)
  c = config_base.base_config()
  c.dataset.name = 'flickr8k'
  c.dataset.manual_dir = '../shared/data/flickr8k_1k'
  c.dataset.image_size = 128
  c.dataset.max_len = 20
  c.dataset.min_count = 2  # rare words of a small corpus become UNK
  c.dataset.train_captions_per_image = 5
  c.model.decoder = 'mrnn'
  c.model.mrnn.variant = values.get('variant', 'mrnn')
  mrnn.switches(c.model.mrnn.variant)  # a one-line error for a bad name
  c.model.embed_dim = 128  # word embedding I
  c.model.hidden_dim = 256  # word embedding II and the recurrent layer
  c.model.mrnn.multimodal_dim = 512
  c.model.dropout = 0.25
  c.model.encoder.channels = (32, 64, 128, 128)
  c.model.encoder.strides = (2, 2, 2, 2)
  c.model.encoder.global_pool = 'mean'
  c.optimizer.l2 = 1e-5  # Eq. 6's L2 term (through the gradient)
  c.train.attention_lambda = 0.0
  c.train.best_metric = 'CIDEr'
  c.train.batch_size = 32
  c.train.num_steps = 1500
  c.train.log_every = 100
  c.eval.likelihood.num_images = 0  # every test image
  c.eval.likelihood.prior_images = 128
  cnn = values.get('cnn', '')
  if cnn:
    if cnn not in CNNS:
      raise ValueError(f'Unknown cnn={cnn!r}: choose one of {CNNS}.')
    c.dataset.image_size = 224
    c.model.encoder.name = cnn
    c.model.encoder.weights = values.get('weights', '')
    c.model.encoder.trainable = 'finetune' in flags
    c.optimizer.encoder_lr_multiplier = FINETUNE_LR_MULTIPLIER
    c.train.batch_size = 16  # a VGG step holds 16 images' activations
  elif 'finetune' in flags or 'weights' in values:
    raise ValueError('finetune and weights= need cnn=vgg16 or cnn=alexnet '
                     '(the small CNN is always trained).')
  if 'tiny' in flags:
    c.dataset.image_size = 224 if cnn else 32
    c.model.embed_dim = 8
    c.model.hidden_dim = 16
    c.model.mrnn.multimodal_dim = 24
    c.model.encoder.channels = (8, 16)
    c.model.encoder.strides = (2, 2)
    c.train.batch_size = 8
    c.train.num_steps = 4
    c.train.log_every = 2
    c.eval.batch_size = 8
    c.eval.max_examples = 8
  return c
