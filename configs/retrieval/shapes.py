r"""Image-text retrieval on the built-in `shapes` dataset (issue 14).

  python -m capjax.main \
      --config=configs/retrieval/shapes.py:model=bilstm \
      --workdir=runs/ret_bilstm

Variants after a colon, comma-separated:
  tiny               a seconds-long run for tests
  model=NAME         alignment (seed 003) | lstm | bilstm (default) |
                     multi_bilstm (seed 004's text encoders)
  loss=NAME          xent (seed 004; the common space's default) |
                     hinge (sum; seed 003, the alignment's default) |
                     hardest (VSE++)
e.g. `configs/retrieval/shapes.py:model=alignment,loss=xent`. The
alignment model's hinge has margin 1 and its softmax scale 1 (its scores
are unnormalised sums); the common space's 0.2 and 10 (cosines).
"""

from capjax import config_base

VARIANTS = ('tiny',)
VALUES = ('model', 'loss')
# model=NAME -> (retrieval.model, text_encoder, num_layers)
MODELS = {
    'alignment': ('alignment', 'bilstm', 1),
    'lstm': ('common_space', 'lstm', 1),
    'bilstm': ('common_space', 'bilstm', 1),
    'multi_bilstm': ('common_space', 'bilstm', 2),
}


def get_config(arg=None):
  """The shapes retrieval config; `arg` selects variants (see above)."""
  flags, values = config_base.parse_arg(arg)
  config_base.check_known('variant', flags, VARIANTS)
  config_base.check_known('key', values, VALUES)
  name = values.get('model', 'bilstm')
  config_base.check_known('model', [name], MODELS)
  c = config_base.base_config()
  c.task = 'retrieval'  # the generic loop's task registry key
  c.retrieval.model, c.retrieval.text_encoder, c.retrieval.num_layers = (
      MODELS[name])
  aligned = name == 'alignment'
  c.retrieval.loss = values.get('loss', 'hinge' if aligned else 'xent')
  # S_kl is an unnormalised sum over words; cosines lie in [-1, 1].
  c.retrieval.margin = 1.0 if aligned else 0.2
  c.retrieval.logit_scale = 1.0 if aligned else 10.0
  c.dataset.max_len = 28  # the longest shapes caption has 26 words
  c.model.embed_dim = 64
  c.model.hidden_dim = 128
  c.retrieval.embed_dim = 128
  c.model.encoder.channels = (32, 64, 128, 128)
  c.model.encoder.strides = (2, 2, 2, 2)  # a 4x4 grid: 16 regions + image
  c.optimizer.learning_rate = 1e-3
  c.optimizer.warmup_steps = 50
  c.train.batch_size = 64
  c.train.num_steps = 400  # about 5 minutes on 2 shared CPU cores
  c.train.log_every = 100
  c.train.best_metric = 'rsum'
  c.eval.evaluators = ('retrieval',)
  c.eval.batch_size = 100
  c.eval.gallery_size = 8
  if 'tiny' in flags:
    c.dataset.builder_config = 'tiny'
    c.model.embed_dim = 16
    c.model.hidden_dim = 16
    c.retrieval.embed_dim = 16
    c.model.encoder.channels = (8, 16)
    c.model.encoder.strides = (2, 2)
    c.model.encoder.global_dim = 32
    c.train.batch_size = 16
    c.train.num_steps = 30
    c.train.log_every = 10
    c.train.checkpoint_every = 30
    c.optimizer.warmup_steps = 2
    c.eval.batch_size = 16
    c.eval.gallery_size = 4
  return c
