r"""The story model on any plain-text corpus: a .txt file or a folder of them.

  python -m capjax.main --config=configs/story/text.py:corpus=stories/ \
      --workdir=runs/story_text

Variants after a colon, comma-separated:
  corpus=PATH        the corpus (required): a file, or a folder whose .txt
                     files are read in sorted order (PersonaBank's original/)
  tiny               a seconds-long run for tests
  carry              carry the LSTM state across consecutive windows
The last `dataset.heldout_chars` characters are held out for bits/char.
"""

from capjax import config_base

VARIANTS = ('tiny', 'carry')
VALUES = ('corpus',)


def get_config(arg=None):
  """The plain-text story config (see the module docstring)."""
  flags, values = config_base.parse_arg(arg)
  config_base.check_known('variant', flags, VARIANTS)
  config_base.check_known('key', values, VALUES)
  c = config_base.base_config()
  c.task = 'language_model'
  c.dataset.name = 'text'
  c.dataset.corpus = values.get('corpus', '')  # set on the command line too
  c.dataset.window = 100
  c.dataset.heldout_chars = 20_000
  c.model.cell = 'lstm'
  c.model.num_layers = 2
  c.model.embed_dim = 32
  c.model.hidden_dim = 256
  c.optimizer.name = 'rmsprop'
  c.optimizer.learning_rate = 2e-3
  c.optimizer.schedule = 'constant'
  c.optimizer.warmup_steps = 0
  c.train.batch_size = 64
  c.train.num_steps = 2000
  c.train.log_every = 100
  c.train.carry_state = 'carry' in flags
  c.train.best_metric = ''
  c.eval.temperature = 0.8
  c.eval.story_seed = '\n'
  if 'tiny' in flags:
    c.dataset.window = 32
    c.dataset.heldout_chars = 500
    c.model.embed_dim = 8
    c.model.hidden_dim = 32
    c.train.batch_size = 8
    c.train.num_steps = 20
    c.train.log_every = 5
    c.train.checkpoint_every = 10
    c.eval.story_length = 40
  return c
