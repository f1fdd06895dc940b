r"""A word-level language model of the shapes captions, with no image.

  python -m capjax.main --config=configs/language_model/shapes.py \
      --workdir=runs/shapes_lm

The m-RNN paper's RNN-Base idea: the same recurrent decoder as the
captioners, trained on the same captions, never shown an image. Its test
perplexity against a captioner's says how much the image is worth.

Variants after a colon, comma-separated:
  tiny               a seconds-long run for tests
  cell=NAME          lstm (default) | gru
  layers=N           stacked recurrent layers (default 1)
"""

from capjax import config_base

VARIANTS = ('tiny',)
VALUES = ('cell', 'layers')


def get_config(arg=None):
  """The shapes language-model config; `arg` selects variants."""
  flags, values = config_base.parse_arg(arg)
  config_base.check_known('variant', flags, VARIANTS)
  config_base.check_known('key', values, VALUES)
  c = config_base.base_config()
  c.task = 'language_model'
  c.model.cell = values.get('cell', 'lstm')
  c.model.num_layers = int(values.get('layers', 1))
  c.model.embed_dim = 64
  c.model.hidden_dim = 128
  c.dataset.max_len = 28  # the longest shapes caption has 26 words
  c.train.best_metric = 'perplexity'
  c.train.num_steps = 800
  c.train.log_every = 100
  if 'tiny' in flags:
    c.dataset.builder_config = 'tiny'
    c.model.embed_dim = 16
    c.model.hidden_dim = 32
    c.train.batch_size = 16
    c.train.num_steps = 12
    c.train.log_every = 4
    c.train.checkpoint_every = 4
    c.optimizer.warmup_steps = 2
    c.eval.batch_size = 16
  return c
