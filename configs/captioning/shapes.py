r"""Captioning the built-in `shapes` dataset (the default experiment).

  python -m capjax.main --config=configs/captioning/shapes.py \
      --workdir=runs/shapes

Variants after a colon, comma-separated:
  tiny               a seconds-long run for tests
  blind              zero the images (the no-vision baseline)
  model=NAME         show_tell | merge | soft_attention (default)
  cell=NAME          lstm (default) | gru
e.g. `--config=configs/captioning/shapes.py:model=merge,cell=gru`. Any field
can also be set on the command line: `--config.train.num_steps=500`.
"""

from capjax import config_base

VARIANTS = ('tiny', 'blind')
VALUES = ('model', 'cell')


def get_config(arg=None):
  """The shapes config; `arg` selects variants (see the module docstring)."""
  flags, values = config_base.parse_arg(arg)
  config_base.check_known('variant', flags, VARIANTS)
  config_base.check_known('key', values, VALUES)
  c = config_base.base_config()
  c.model.decoder = values.get('model', 'soft_attention')
  c.model.cell = values.get('cell', 'lstm')
  c.model.blind = 'blind' in flags
  c.dataset.max_len = 28  # the longest shapes caption has 26 words
  c.dataset.train_captions_per_image = 5  # encode once, learn from 5 captions
  c.model.embed_dim = 64
  c.model.hidden_dim = 128
  c.model.attention_dim = 32
  c.model.encoder.channels = (32, 64, 128, 128)
  c.model.encoder.strides = (2, 2, 2, 1)  # an 8x8 grid whose cells see 31 px
  c.train.attention_lambda = 0.0
  c.train.best_metric = 'caption_accuracy'
  c.train.num_steps = 800  # about 7 minutes on 2 CPU cores
  c.train.log_every = 100
  if 'tiny' in flags:
    c.dataset.builder_config = 'tiny'
    c.model.embed_dim = 16
    c.model.hidden_dim = 32
    c.model.attention_dim = 16
    c.model.encoder.channels = (8, 16)
    c.model.encoder.strides = (2, 2)
    c.model.encoder.global_dim = 32
    c.train.batch_size = 16
    c.train.num_steps = 20
    c.train.log_every = 5
    c.train.checkpoint_every = 10
    c.optimizer.warmup_steps = 2
    c.eval.batch_size = 16
    c.eval.gallery_size = 4
  return c
