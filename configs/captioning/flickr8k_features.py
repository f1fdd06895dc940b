r"""A merge captioner on precomputed CNN features of Flickr8k (seed 000).

First extract the features (configs/features/flickr8k_inception_v3.py),
then:

  python -m capjax.main --config=configs/captioning/flickr8k_features.py \
      --workdir=runs/flickr8k_merge

It trains seed 000's merge model (the image vector projected and added to
the LSTM's output, then a dense layer and the softmax) through the identity
encoder on `runs/flickr8k_inception_v3/features`, with captions capped at 34
tokens and Adam at 1e-3, and scores the test split (BLEU-1..4, ROUGE-L,
CIDEr-D; METEOR when Java is installed).
`launch/flickr8k_demo.sh` runs the whole sequence on the 1000-photo subset.

Variants after a colon, comma-separated:
  tiny                  a seconds-long run for tests
  cell=NAME             lstm (default) | gru: the paper's comparison
  features=NAME         inception_v3 (default) | vgg16: which features folder
  (any folder: --config.dataset.features=DIR/features)
"""

from capjax import config_base

VARIANTS = ('tiny',)
VALUES = ('cell', 'features')
FEATURES = {'inception_v3': 'runs/flickr8k_inception_v3/features',
            'vgg16': 'runs/flickr8k_vgg16/features'}


def get_config(arg=None):
  """The features captioning config; `arg` selects variants (docstring)."""
  flags, values = config_base.parse_arg(arg)
  config_base.check_known('variant', flags, VARIANTS)
  config_base.check_known('key', values, VALUES)
  features = values.get('features', 'inception_v3')
  config_base.check_known('features', [features], FEATURES)
  c = config_base.base_config()
  c.dataset.name = 'flickr8k'
  c.dataset.manual_dir = '../shared/data/flickr8k_1k'
  c.dataset.features = FEATURES[features]
  c.dataset.image_size = 128  # only the gallery shows the photos
  c.dataset.max_len = 34  # seed 000's longest caption
  c.dataset.min_count = 10  # seed 000 drops words seen fewer than 10 times
  c.model.encoder.name = 'identity'
  c.model.decoder = 'merge'
  c.model.merge = 'add'
  c.model.cell = values.get('cell', 'lstm')
  c.model.embed_dim = 256
  c.model.hidden_dim = 256
  c.model.dropout = 0.5
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 1e-3
  c.optimizer.schedule = 'constant'
  c.optimizer.warmup_steps = 0
  c.train.attention_lambda = 0.0
  c.train.batch_size = 64
  c.train.num_steps = 1000
  c.train.log_every = 50
  c.train.checkpoint_every = 300
  c.train.best_metric = 'CIDEr'
  c.eval.batch_size = 64
  c.eval.gallery_size = 12
  # The loop's greedy decoder returns the best-scoring caption it met; with
  # a plain sum of log-probabilities that is 'a man' for every photo.
  c.eval.length_penalty = 1.0
  c.eval.metrics = ('bleu', 'rouge', 'cider', 'meteor')  # METEOR: Java
  if 'tiny' in flags:
    c.model.embed_dim = 16
    c.model.hidden_dim = 32
    c.dataset.min_count = 1
    c.train.batch_size = 16
    c.train.num_steps = 4
    c.train.log_every = 2
    c.train.checkpoint_every = 4
    c.eval.batch_size = 16
    c.eval.gallery_size = 2
  return c
