r"""Hashtags of Flickr8k photos: tags are the content words captions share.

  python -m capjax.main \
      --config=configs/hashtags/flickr8k.py:model=soft_attention \
      --workdir=runs/f8k_tags \
      --config.dataset.manual_dir=../shared/data/flickr8k_1k

`python -m capjax.tag_table
--workdirs=A,B,C` prints the seed's table (BLEU-1, P/R/F1@3) of trained ones.
Variants after a colon, comma-separated:
  tiny               a seconds-long run for tests (photos at 32 px)
  model=NAME         soft_attention (default) | show_tell | multilabel
`dataset.manual_dir` holds the official Flickr8k files (the 1000-photo
subset in ../shared/data/flickr8k_1k by default).
"""

from capjax import config_base

VARIANTS = ('tiny',)
VALUES = ('model',)
MODELS = ('soft_attention', 'show_tell', 'multilabel')
MANUAL_DIR = '../shared/data/flickr8k_1k'


def get_config(arg=None):
  """The Flickr8k hashtag config; `arg` selects variants (see the docstring)."""
  flags, values = config_base.parse_arg(arg)
  config_base.check_known('variant', flags, VARIANTS)
  config_base.check_known('key', values, VALUES)
  model = values.get('model', 'soft_attention')
  if model not in MODELS:
    raise ValueError(f'Unknown model={model!r}: choose one of {MODELS}.')
  c = config_base.base_config()
  c.task = 'multilabel' if model == 'multilabel' else 'captioning'
  c.model.decoder = 'show_tell' if model == 'multilabel' else model
  c.dataset.name = 'flickr8k_hashtags'
  c.dataset.manual_dir = MANUAL_DIR
  c.dataset.image_size = 96
  c.dataset.max_len = 11  # at most 10 tags, then EOS
  c.dataset.min_count = 3  # rarer tags become UNK (never emitted)
  c.dataset.captions_per_image = 1
  c.model.embed_dim = 64
  c.model.hidden_dim = 128
  c.model.attention_dim = 64
  c.model.encoder.channels = (32, 64, 128, 128)
  c.model.encoder.strides = (2, 2, 2, 2)  # a 6x6 grid at 96 px
  c.train.attention_lambda = 0.0
  c.train.best_metric = 'Bleu_1'
  c.train.num_steps = 600
  c.train.batch_size = 32
  c.eval.no_repeat_any = True
  c.eval.suppress_unk = True
  c.eval.metrics = ('bleu',)
  if 'tiny' in flags:
    c.dataset.image_size = 32
    c.model.embed_dim = 16
    c.model.hidden_dim = 32
    c.model.attention_dim = 16
    c.model.encoder.channels = (8, 16)
    c.model.encoder.strides = (2, 2)
    c.model.encoder.global_dim = 32
    c.train.batch_size = 16
    c.train.num_steps = 20
    c.train.checkpoint_every = 10
    c.optimizer.warmup_steps = 2
    c.eval.batch_size = 16
    c.eval.gallery_size = 4
  return c
