r"""Seed 000's LSTM vs GRU merge captioners on Flickr8k, its preprocessing.

  python -m capjax.main --config=configs/captioning/flickr8k_seed000.py \
      --workdir=runs/seed000_lstm
  python -m capjax.main \
      --config=configs/captioning/flickr8k_seed000.py:gru,glove=G.txt \
      --workdir=runs/seed000_gru_glove  # G.txt: e.g. glove.6B.200d.txt

The paper (`../shared/seeds/000_lstm_gru_captioning.txt`, sections III-IV):
Flickr8k's official 6000/1000/1000 split; stop words removed from the
captions; words seen fewer than 10 times removed; captions framed by start
and end markers, the longest 34 tokens with both; Inception-v3 features
(2048); GloVe word embeddings; the caption's RNN (LSTM or GRU) and the image
merged before a feed-forward layer and the softmax; Adam at 1e-3, 3 pictures
per batch, 30 epochs; BLEU and ROUGE. It gives no layer sizes (its model
summary is a figure); 200-d embeddings and 256 units are those of the
tutorial whose numbers its own match (below).

capjax's reading of it:
* `max_len` counts the words and EOS, not BOS: the paper's 34 (start + 32
  words + end) is max_len 33, and no caption is cut.
* Its figures (8763 unique words, the longest caption 32 words, 'brown dog is
  running on the grass') are those of the tutorial cleaning (one-letter
  words, punctuation and words with digits removed), not of a stop-word
  list; `cleaning=` picks: `stop_words` (what the paper says, the default),
  `letters` (what its figures show), `both` or `none`.
* Rare words are removed from the captions (`dataset.rare_words='drop'`), as
  the paper says, not turned into UNK.
* References: the paper does not say; the default scores against the raw
  references (the COCO toolkit convention); `clean_refs` scores against
  references cleaned like the training captions.
* The image: capjax trains the small CNN from pixels by default (no
  pretrained weights can be fetched here). `features=DIR` trains on
  precomputed Inception-v3 features instead (`dataset.features`, identity
  encoder; see `configs/features/flickr8k_inception_v3.py`).

Variants after a colon, comma-separated:
  tiny               a seconds-long run for tests
  lstm | gru         the RNN cell (default lstm)
  merge | inject     image merged before the softmax (default) | fed first
  frozen | trained   GloVe embedding kept fixed (default with glove=) |
                     fine-tuned (default without: a random one trains)
  clean_refs         BLEU/ROUGE/CIDEr references cleaned like the captions
  manual_dir=DIR     the Flickr8k files (default ../shared/data/flickr8k_1k)
  glove=FILE         GloVe text file for the word embedding (default: none)
  cleaning=NAME      stop_words (default) | letters | both | none
  features=DIR       precomputed features (from capjax.extract_features)
Flickr8k's 6000 training images make 2000 steps an epoch at 3 per batch;
the 753 of `flickr8k_1k` make 251 (30 epochs: --config.train.num_steps=7530).
"""

from capjax import config_base

VARIANTS = ('tiny', 'lstm', 'gru', 'merge', 'inject', 'frozen', 'trained',
            'clean_refs')
VALUES = ('manual_dir', 'glove', 'cleaning', 'features')
CLEANING = {  # cleaning= -> (dataset.stop_words, dataset.letter_words)
    'stop_words': (True, False),
    'letters': (False, True),
    'both': (True, True),
    'none': (False, False),
}


def _one_of(flags, choices, default):
  chosen = sorted(set(flags) & set(choices))
  if len(chosen) > 1:
    raise ValueError(f'Config variants {chosen} exclude each other: pick one.')
  return chosen[0] if chosen else default


def get_config(arg=None):
  """The seed 000 config; `arg` selects variants (module docstring)."""
  flags, values = config_base.parse_arg(arg)
  config_base.check_known('variant', flags, VARIANTS)
  config_base.check_known('key', values, VALUES)
  c = config_base.base_config()
  c.dataset.name = 'flickr8k'
  c.dataset.manual_dir = values.get('manual_dir', '../shared/data/flickr8k_1k')
  c.dataset.image_size = 128  # the small CNN's input (pixels)
  cleaning = values.get('cleaning', 'stop_words')
  if cleaning not in CLEANING:
    raise ValueError(f'Unknown cleaning={cleaning!r}: choose one of '
                     f'{sorted(CLEANING)}.')
  c.dataset.stop_words, c.dataset.letter_words = CLEANING[cleaning]
  c.dataset.clean_references = 'clean_refs' in flags
  c.dataset.min_count = 10  # words seen fewer than 10 times are removed
  c.dataset.rare_words = 'drop'
  c.dataset.max_len = 33  # the paper's 34 minus its start marker
  c.dataset.train_captions_per_image = 5  # a picture with all its captions
  c.model.cell = _one_of(flags, ('lstm', 'gru'), 'lstm')
  c.model.decoder = {'merge': 'merge', 'inject': 'show_tell'}[
      _one_of(flags, ('merge', 'inject'), 'merge')]
  c.model.merge = 'add'
  c.model.embed_dim = 200  # GloVe 200d (set 300 with a 300d file)
  c.model.hidden_dim = 256
  c.model.dropout = 0.5
  c.model.embedding_init = values.get('glove', '')
  # Frozen by default with GloVe (the paper's tutorial); trained when random.
  chosen = _one_of(flags, ('frozen', 'trained'), '')
  c.model.embedding_trainable = (
      chosen == 'trained' if chosen else not c.model.embedding_init)
  c.model.encoder.channels = (32, 64, 128, 128)
  c.model.encoder.strides = (2, 2, 2, 2)
  c.model.encoder.global_pool = 'mean'
  if 'features' in values:
    c.dataset.features = values['features']
    c.model.encoder.name = 'identity'
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 1e-3
  c.optimizer.schedule = 'constant'
  c.optimizer.warmup_steps = 0
  c.optimizer.eps = 1e-7  # Keras's Adam, the paper's framework
  c.optimizer.grad_clip_norm = 0.0
  c.train.batch_size = 3  # pictures per batch (x 5 captions)
  c.train.num_steps = 60_000  # 30 epochs of Flickr8k's 6000 pictures
  c.train.log_every = 200
  c.train.checkpoint_every = 2000
  c.train.attention_lambda = 0.0
  c.train.best_metric = 'CIDEr'
  c.eval.metrics = ('bleu', 'rouge', 'cider')
  c.eval.batch_size = 50
  if 'tiny' in flags:
    c.dataset.image_size = 32
    c.model.embed_dim = 8
    c.model.hidden_dim = 16
    c.model.encoder.channels = (8, 16)
    c.model.encoder.strides = (2, 2)
    c.train.batch_size = 8
    c.train.num_steps = 4
    c.train.log_every = 2
    c.train.checkpoint_every = 4
    c.eval.batch_size = 8
    c.eval.max_examples = 8
    c.eval.gallery_size = 2
  return c
