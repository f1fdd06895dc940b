r"""The m-RNN (Mao et al., ICLR 2015) on the built-in `shapes` dataset.

  python -m capjax.main --config=configs/mrnn/shapes.py --workdir=runs/mrnn

Variants after a colon, comma-separated:
  tiny               a seconds-long run for tests
  variant=NAME       mrnn (default) | NoEmbInput | OneLayerEmb | EmbOneInput |
                     VisualInRnn | VisualInRnn-both | VisualInRnn-both-shared |
                     RNN-Base | mrnn-shared
e.g. `--config=configs/mrnn/shapes.py:variant=RNN-Base`. Sizes are the
paper's halves (embeddings 64/128, multimodal 256) to fit the small dataset
and the 2-core CI machine.
"""

from capjax import config_base
from capjax.models.captioners import mrnn

VARIANTS = ('tiny',)
VALUES = ('variant',)


def get_config(arg=None):
  """The m-RNN shapes config; `arg` selects variants (module docstring)."""
  flags, values = config_base.parse_arg(arg)
  config_base.check_known('variant', flags, VARIANTS)
  config_base.check_known('key', values, VALUES)
  c = config_base.base_config()
  c.model.decoder = 'mrnn'
  c.model.mrnn.variant = values.get('variant', 'mrnn')
  mrnn.switches(c.model.mrnn.variant)  # a one-line error for a bad name
  c.dataset.max_len = 28  # the longest shapes caption has 26 words
  c.dataset.train_captions_per_image = 5  # encode once, learn from 5 captions
  c.model.embed_dim = 64  # word embedding I
  c.model.hidden_dim = 128  # word embedding II and the recurrent layer
  c.model.mrnn.multimodal_dim = 256
  c.model.encoder.channels = (32, 64, 128, 128)
  c.model.encoder.strides = (2, 2, 2, 1)
  c.optimizer.l2 = 1e-5  # Eq. 6's L2 term (through the gradient)
  c.train.attention_lambda = 0.0
  c.train.best_metric = 'caption_accuracy'
  c.train.num_steps = 800
  c.train.log_every = 100
  c.eval.likelihood.prior_images = 128
  if 'tiny' in flags:
    c.dataset.builder_config = 'tiny'
    c.model.embed_dim = 8
    c.model.hidden_dim = 16
    c.model.mrnn.multimodal_dim = 24
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
    c.eval.likelihood.num_images = 16
    c.eval.likelihood.prior_images = 8
    c.eval.likelihood.chunk = 64
    c.eval.consensus.n_best = 3
    c.eval.consensus.k = 4
    c.eval.consensus.m_bleu = 6
    c.eval.consensus.m_cider = 5
  return c
