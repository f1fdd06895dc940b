r"""The m-RNN figures of the README from trained shapes workdirs.

  # 1. Train every variant at one budget (Table 9), e.g. 300 steps each:
  for v in mrnn RNN-Base mrnn-shared NoEmbInput OneLayerEmb EmbOneInput \
      VisualInRnn VisualInRnn-both VisualInRnn-both-shared; do
    python -m capjax.main --config=configs/mrnn/shapes.py:variant=$v \
      --workdir=runs/table9/$v --config.train.num_steps=300
  done
  # 2. The tables (markdown on stdout):
  python -m capjax.benchmarks.mrnn_tables --runs=runs/table9 \
      --what=table9,retrieval,rerank

`table9` reads each variant's `eval/test_metrics.json` (greedy decoding, as
training evaluates); `retrieval` runs the `likelihood_retrieval` evaluator on
the test split of `--retrieval_variant`; `rerank` runs `consensus_rerank` on
`--rerank_splits` with `--rerank_variant` (the paper reranks m-RNN-shared);
`sweep` chooses k and m on the validation split (`--sweep_k`, `--sweep_m`).
"""

import json
import math
import os
import time

from absl import app
from absl import flags
from absl import logging

from capjax import checkpointing
from capjax.evaluators import consensus_rerank
from capjax.evaluators import likelihood_retrieval
from capjax.models import captioning
from capjax.tasks import captioning as captioning_task

VARIANTS = ('mrnn', 'NoEmbInput', 'OneLayerEmb', 'EmbOneInput',
            'VisualInRnn', 'VisualInRnn-both', 'VisualInRnn-both-shared',
            'RNN-Base', 'mrnn-shared')
CAPTION_METRICS = ('Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'CIDEr',
                   'caption_accuracy')

_RUNS = flags.DEFINE_string('runs', 'runs/table9',
                            'One workdir per variant, named by the variant.')
_WHAT = flags.DEFINE_list('what', ['table9', 'retrieval', 'rerank'],
                          'Tables to make.')
_RETRIEVAL_VARIANT = flags.DEFINE_string('retrieval_variant', 'mrnn',
                                         'retrieval: the workdir scored.')
_RETRIEVAL_IMAGES = flags.DEFINE_integer(
    'retrieval_images', 1000, 'retrieval: test images (5 sentences each).')
_PRIOR_IMAGES = flags.DEFINE_integer(
    'prior_images', 128, "retrieval: training images of Eq. 7's P(s).")
_RERANK_VARIANT = flags.DEFINE_string('rerank_variant', 'mrnn-shared',
                                      'rerank: the workdir reranked.')
_RERANK_SPLITS = flags.DEFINE_list('rerank_splits', ['validation', 'test'],
                                   'rerank: splits.')
_RERANK_IMAGES = flags.DEFINE_integer(
    'rerank_images', 0, 'rerank: first N images of each split (0 = all).')
_SWEEP_K = flags.DEFINE_list('sweep_k', ['20', '40', '60'],
                             'sweep: numbers of nearest training images.')
_SWEEP_M = flags.DEFINE_list('sweep_m', ['25', '75', '125', '175'],
                             'sweep: numbers of similarities summed.')
_SPACE = flags.DEFINE_string('space', 'refined',
                             'rerank: kNN space, refined | raw.')


def _table(header, rows) -> str:
  lines = ['| ' + ' | '.join(header) + ' |',
           '|' + '|'.join('---' for _ in header) + '|']
  lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
  return '\n'.join(lines)


def table9(runs: str) -> str:
  """Caption metrics and perplexity of every trained variant."""
  rows = []
  for variant in VARIANTS:
    path = os.path.join(runs, variant, 'eval', 'test_metrics.json')
    if not os.path.exists(path):
      rows.append([variant] + ['not run'] * (len(CAPTION_METRICS) + 2))
      continue
    with open(path) as f:
      m = json.load(f)
    rows.append([variant] + [f'{m[k]:.3f}' if k in m else '-'
                             for k in CAPTION_METRICS]
                + [f'{m["perplexity"]:.3f}',
                   f'{math.log2(m["perplexity"]):.3f}'])
  return _table(('variant',) + CAPTION_METRICS + ('perplexity', 'log2 PPL'),
                rows)


def _restore(workdir: str):
  # The latest checkpoint only (no --checkpoint flag to name in advice).
  config, meta, params, step = checkpointing.restore_trained(workdir,
                                                             flag='')
  model = captioning.create(config, len(captioning_task.vocab_of(meta)))
  logging.info('Restored %s at step %d.', workdir, step)
  return config, meta, model, params


def retrieval_table(workdir: str, num_images: int, prior_images: int) -> str:
  """R@K both ways with Eq. 7 and unnormalised, on the test split."""
  config, meta, model, params = _restore(workdir)
  config.eval.likelihood.num_images = num_images
  config.eval.likelihood.prior_images = prior_images
  start = time.perf_counter()
  evaluator = likelihood_retrieval.Evaluator(config, captioning_task, model,
                                             meta, 'test')
  m = evaluator.run(params)
  seconds = time.perf_counter() - start
  pairs = m['num_images'] * m['num_sentences']
  rows = []
  for name, prefix in (('image -> sentence, Eq. 7', 'i2t_'),
                       ('image -> sentence, P(s \\| I)', 'i2t_unnorm_'),
                       ('sentence -> image, P(s \\| I)', 't2i_')):
    rows.append([name] + [f'{m[prefix + k]:.1f}'
                          for k in ('r1', 'r5', 'r10', 'medr')])
  return (_table(('direction', 'R@1', 'R@5', 'R@10', 'Med r'), rows)
          + f'\n\n{int(m["num_images"])} images x '
          f'{int(m["num_sentences"])} sentences ({pairs:.3g} pairs, fast '
          f'path: {evaluator.fast}) in {seconds:.0f} s including compilation '
          f'and the {prior_images} prior images; test log2 PPL '
          f'{m["log2_ppl"]:.3f} (perplexity {m["perplexity"]:.3f}).')


def rerank_table(workdir: str, splits) -> str:
  """Table 8's rows on each split."""
  config, meta, model, params = _restore(workdir)
  config.eval.max_examples = _RERANK_IMAGES.value
  config.eval.consensus.space = _SPACE.value
  out = []
  for split in splits:
    start = time.perf_counter()
    evaluator = consensus_rerank.Evaluator(config, captioning_task, model,
                                           meta, split)
    m = evaluator.run(params)
    seconds = time.perf_counter() - start
    rows = []
    for row in consensus_rerank.ROWS:
      rows.append([row] + [f'{m[f"{row}/{k}"]:.3f}' if f'{row}/{k}' in m
                           else '-' for k in CAPTION_METRICS]
                  + [f'{m.get(f"{row}/changed", 0.0):.2f}'])
    c = config.eval.consensus
    out.append(f'{split} ({len(evaluator.images)} images, n = {c.n_best}, '
               f'k = {c.k}, m = {c.m_bleu} / {c.m_cider}, {c.space} space, '
               f'{seconds:.0f} s):\n\n'
               + _table(('rerank',) + CAPTION_METRICS + ('changed',), rows))
  return '\n\n'.join(out)


def sweep_table(workdir: str) -> str:
  """k and m of both consensus rerankings on the validation split."""
  config, meta, model, params = _restore(workdir)
  config.eval.max_examples = _RERANK_IMAGES.value
  config.eval.consensus.space = _SPACE.value
  evaluator = consensus_rerank.Evaluator(config, captioning_task, model,
                                         meta, 'validation')
  records = evaluator.sweep(params, [int(k) for k in _SWEEP_K.value],
                            [int(m) for m in _SWEEP_M.value])
  rows = [[r['kind'], str(r['k']), str(r['m']), f'{r["Bleu_4"]:.3f}',
           f'{r["CIDEr"]:.3f}'] for r in records]
  return _table(('kind', 'k', 'm', 'Bleu_4', 'CIDEr'), rows)


def main(argv):
  del argv
  runs = _RUNS.value
  for what in _WHAT.value:
    if what == 'table9':
      print(table9(runs), flush=True)
    elif what == 'retrieval':
      print(retrieval_table(os.path.join(runs, _RETRIEVAL_VARIANT.value),
                            _RETRIEVAL_IMAGES.value, _PRIOR_IMAGES.value),
            flush=True)
    elif what == 'rerank':
      print(rerank_table(os.path.join(runs, _RERANK_VARIANT.value),
                         _RERANK_SPLITS.value), flush=True)
    elif what == 'sweep':
      print(sweep_table(os.path.join(runs, _RERANK_VARIANT.value)),
            flush=True)
    else:
      raise app.UsageError(f'--what: unknown {what!r}; choose from table9, '
                           'retrieval, rerank, sweep.')
    print()


if __name__ == '__main__':
  app.run(main)
