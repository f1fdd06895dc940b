r"""The story model on Flickr8k paragraphs (an image's captions, its tag first).

  python -m capjax.main --config=configs/story/flickr8k.py \
      --workdir=runs/story

Variants after a colon, comma-separated:
  tiny               a seconds-long run for tests
  carry              carry the LSTM state across consecutive windows
`dataset.manual_dir` holds the official Flickr8k text files (all 8092 images'
captions in ../shared/data/flickr8k_text by default; no photos needed).
"""

from capjax import config_base

VARIANTS = ('tiny', 'carry')
VALUES = ()
MANUAL_DIR = '../shared/data/flickr8k_text'


def get_config(arg=None):
  """The Flickr8k paragraph story config (see the module docstring)."""
  flags, values = config_base.parse_arg(arg)
  config_base.check_known('variant', flags, VARIANTS)
  config_base.check_known('key', values, VALUES)
  c = config_base.base_config()
  c.task = 'language_model'
  c.dataset.name = 'text'
  c.dataset.corpus = ''  # '' = the Flickr8k paragraphs of manual_dir
  c.dataset.manual_dir = MANUAL_DIR
  c.dataset.window = 100
  c.dataset.heldout_chars = 50_000
  c.model.cell = 'lstm'
  c.model.num_layers = 2
  c.model.embed_dim = 32
  c.model.hidden_dim = 256
  c.optimizer.name = 'rmsprop'  # as in the seed (char-rnn)
  c.optimizer.learning_rate = 2e-3
  c.optimizer.schedule = 'constant'
  c.optimizer.warmup_steps = 0
  c.optimizer.eps = 1e-8
  c.train.batch_size = 64
  c.train.num_steps = 2000
  c.train.log_every = 100
  c.train.carry_state = 'carry' in flags
  c.train.best_metric = ''
  c.eval.temperature = 0.8
  c.eval.story_length = 500
  c.eval.story_seed = '#dog '
  if 'tiny' in flags:
    c.dataset.window = 32
    c.dataset.heldout_chars = 2_000
    c.model.embed_dim = 8
    c.model.hidden_dim = 32
    c.train.batch_size = 8
    c.train.num_steps = 20
    c.train.log_every = 5
    c.train.checkpoint_every = 10
    c.eval.story_length = 40
  return c
