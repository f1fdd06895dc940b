r"""Seed 004's protocol: retrieval trained on Flickr8k, scored on SIMPLIcity.

  python -m capjax.main \
      --config=configs/retrieval/simplicity.py:model=multi_bilstm \
      --workdir=runs/ret_wang \
      --config.dataset.manual_dir=/path/to/Flickr8k \
      --config.dataset.eval_manual_dir=/path/to/wang_1000

The model trains on Flickr8k exactly as configs/retrieval/flickr8k.py; at
the end it is scored on Flickr8k's test split and on 'simplicity:test':
Wang's 1000 images (0.jpg .. 999.jpg in eval_manual_dir), each with its
class keyword as its only text (in the words Flickr8k's captions use:
'beach', 'horse', ...), queried both ways with the per-class precision and
recall at 10 (`i2t_p@10/<class>`, `t2i_r@10/<class>`, ...) of the paper's
Table 1. A keyword the training vocabulary lacks is UNK.

Variants after a colon, as in configs/retrieval/shapes.py: `tiny`,
`model=alignment|lstm|bilstm|multi_bilstm`, `loss=xent|hinge|hardest`.
"""

from configs.retrieval import flickr8k


def get_config(arg=None):
  """The Flickr8k retrieval config, also scored on SIMPLIcity."""
  c = flickr8k.get_config(arg)
  c.eval.splits = ('test', 'simplicity:test')
  # All 1000 images in test, class keywords as Flickr8k's captions write
  # them ('beach', 'horse'; simplicity/default has 'beaches', 'horses').
  c.dataset.eval_builder_config = 'flickr_words'
  c.retrieval.class_k = 10  # the paper's K
  return c
