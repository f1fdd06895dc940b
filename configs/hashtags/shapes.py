r"""Hashtags of the built-in `shapes_hashtags` dataset (the seed's comparison).

  python -m capjax.main \
      --config=configs/hashtags/shapes.py:model=soft_attention \
      --workdir=runs/tags_att

`python -m capjax.tag_table
--workdirs=A,B,C` prints the seed's table (BLEU-1, P/R/F1@3) of trained ones.
Variants after a colon, comma-separated:
  tiny               a seconds-long run for tests
  model=NAME         soft_attention (default) | show_tell: a captioner over
                     tag sequences, decoded with no tag twice;
                     multilabel: one sigmoid per tag (config.task multilabel)
The three models share the encoder, the data and the step budget.
"""

from capjax import config_base

VARIANTS = ('tiny',)
VALUES = ('model',)
MODELS = ('soft_attention', 'show_tell', 'multilabel')


def get_config(arg=None):
  """The shapes_hashtags config; `arg` selects variants (see the docstring)."""
  flags, values = config_base.parse_arg(arg)
  config_base.check_known('variant', flags, VARIANTS)
  config_base.check_known('key', values, VALUES)
  model = values.get('model', 'soft_attention')
  if model not in MODELS:
    raise ValueError(f'Unknown model={model!r}: choose one of {MODELS}.')
  c = config_base.base_config()
  c.task = 'multilabel' if model == 'multilabel' else 'captioning'
  c.model.decoder = 'show_tell' if model == 'multilabel' else model
  c.dataset.name = 'shapes_hashtags'
  c.dataset.max_len = 20  # at most 9 scene tags, a count and 8 noise tags
  c.dataset.captions_per_image = 1  # one tag sequence per image
  c.model.embed_dim = 64
  c.model.hidden_dim = 128
  c.model.attention_dim = 32
  c.model.encoder.channels = (32, 64, 128, 128)
  c.model.encoder.strides = (2, 2, 2, 1)
  c.train.attention_lambda = 0.0
  c.train.best_metric = 'Bleu_1'
  c.train.num_steps = 800
  c.train.log_every = 100
  c.eval.no_repeat_any = True  # no tag twice
  c.eval.metrics = ('bleu',)
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
