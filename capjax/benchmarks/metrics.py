"""Times capjax's caption metrics against the COCO toolkit on real captions.

Input: the first `num_images` images of a COCO caption file (default: all
COCO val2014 captions in ../shared/data) that have at least two captions;
each image's first caption is the candidate and the others (4-6) are its
references, so the candidates are real human captions of the right length
and vocabulary.

capjax stages: tokenization of all captions, the shared n-gram table, BLEU,
ROUGE-L and CIDEr-D from it, and `total`: `coco.score_details` from raw
strings for those three metrics. The toolkit (when `pycocoevalcap` imports)
runs as its users run it: `PTBTokenizer().tokenize` on the references and on
the results (two Java calls, as `COCOEvalCap.evaluate` makes), then
`Bleu(4)`, `Rouge()` and `Cider()`. Its stages are timed once each
(`repeats` 1, no warm-up: a run takes seconds), capjax's as configured.

Stage `process` times what a user waits for: a whole new Python process
that reads a COCO references file and a results file and prints the scores,
`python -m capjax.evaluate --references R --results S` against a script
doing what `COCOEvalCap.evaluate` does for those three metrics (pycocotools'
COCO loading, two PTB tokenizer calls, Bleu, Rouge, Cider). The two
commands alternate `process_repeats` times; the median is reported.
"""

import collections
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from capjax.benchmarks import timing
from capjax.metrics import batch_tokenizer
from capjax.metrics import bleu
from capjax.metrics import cider
from capjax.metrics import coco
from capjax.metrics import ngrams
from capjax.metrics import rouge

DEFAULT_CAPTIONS = os.path.join(
    os.path.dirname(__file__), '..', '..', '..', 'shared', 'data',
    'coco_val2014_captions', 'captions_val2014_text_only.json')
FAST_METRICS = ('bleu', 'rouge', 'cider')
REPO = os.path.join(os.path.dirname(__file__), '..', '..')
# The toolkit as its users run it, without METEOR and SPICE: argv[1] is the
# references file, argv[2] the results file.
TOOLKIT_PROCESS = """
import sys
from pycocotools.coco import COCO
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
coco = COCO(sys.argv[1])
res = coco.loadRes(sys.argv[2])
ids = res.getImgIds()
gts = {i: coco.imgToAnns[i] for i in ids}
out = {i: res.imgToAnns[i] for i in ids}
tokenizer = PTBTokenizer()
gts, out = tokenizer.tokenize(gts), tokenizer.tokenize(out)
for scorer in (Bleu(4), Rouge(), Cider()):
  print(scorer.method(), scorer.compute_score(gts, out)[0])
"""


def load_input(path: str, num_images: int):
  """(references, results) of raw strings: first caption vs the others."""
  with open(path, encoding='utf-8') as f:
    data = json.load(f)
  captions = collections.defaultdict(list)
  for ann in data['annotations']:
    captions[ann['image_id']].append(ann['caption'])
  order = [im['id'] for im in data.get('images', [])] or list(captions)
  ids = [i for i in order if len(captions[i]) >= 2][:num_images]
  if len(ids) < num_images:
    raise ValueError(f'{path} has only {len(ids)} images with two captions; '
                     f'asked for {num_images}.')
  references = {i: captions[i][1:] for i in ids}
  results = {i: captions[i][0] for i in ids}
  return references, results


def _capjax(references, results, config):
  """Times each capjax stage; returns (records, scores)."""
  ids = list(results)
  ref_texts = [c for i in ids for c in references[i]]
  cand_texts = [results[i] for i in ids]

  def tokenize():
    return (batch_tokenizer.tokenize_batch(ref_texts),
            batch_tokenizer.tokenize_batch(cand_texts))

  stages = {}
  stages['tokenize'], (ref_tokens, cand_tokens) = timing.time_fn(
      tokenize, config['repeats'], config['warmup'])
  refs, start = [], 0
  for i in ids:
    refs.append(ref_tokens[start:start + len(references[i])])
    start += len(references[i])
  def build():
    with batch_tokenizer.gc_paused():
      return ngrams.build(cand_tokens, refs)

  stages['ngram_table'], table = timing.time_fn(build, config['repeats'],
                                                config['warmup'])
  for name, fn in (('bleu', bleu.from_table), ('rouge_l', rouge.from_table),
                   ('cider_d', cider.from_table)):
    stages[name], _ = timing.time_fn(lambda fn=fn: fn(table),
                                     config['repeats'], config['warmup'])
  stages['total'], report = timing.time_fn(
      lambda: coco.score_details(references, results, FAST_METRICS),
      config['repeats'], config['warmup'])
  return stages, report.scores


def _toolkit(references, results):
  """Times the toolkit's stages once; returns (stages, scores)."""
  from pycocoevalcap.bleu import bleu as tk_bleu  # pylint: disable=g-import-not-at-top
  from pycocoevalcap.cider import cider as tk_cider  # pylint: disable=g-import-not-at-top
  from pycocoevalcap.rouge import rouge as tk_rouge  # pylint: disable=g-import-not-at-top
  from pycocoevalcap.tokenizer import ptbtokenizer  # pylint: disable=g-import-not-at-top
  gts = {i: [{'caption': c} for c in references[i]] for i in results}
  res = {i: [{'caption': results[i]}] for i in results}
  stages = {}

  def tokenize():
    tok = ptbtokenizer.PTBTokenizer()
    return tok.tokenize(gts), tok.tokenize(res)

  stages['tokenize'], (gts_tok, res_tok) = timing.time_fn(tokenize, 1, 0)
  scores = {}
  with contextlib.redirect_stdout(io.StringIO()):
    stages['bleu'], (b, _) = timing.time_fn(
        lambda: tk_bleu.Bleu(4).compute_score(gts_tok, res_tok, verbose=0),
        1, 0)
    stages['rouge_l'], (r, _) = timing.time_fn(
        lambda: tk_rouge.Rouge().compute_score(gts_tok, res_tok), 1, 0)
    stages['cider_d'], (c, _) = timing.time_fn(
        lambda: tk_cider.Cider().compute_score(gts_tok, res_tok), 1, 0)
  for k in range(4):
    scores[f'Bleu_{k + 1}'] = b[k]
  scores['ROUGE_L'], scores['CIDEr'] = float(r), float(c)
  total = sum(t.median_seconds for t in stages.values())
  stages['total'] = timing.Timing(total, total, total, total, 1, 0)
  return stages, scores


def _write_files(references, results, directory: str) -> tuple[str, str]:
  """The COCO annotation and results files of (references, results)."""
  annotations = [{'image_id': i, 'id': n, 'caption': c}
                 for n, (i, c) in enumerate(
                     (i, c) for i in results for c in references[i])]
  ref_path = os.path.join(directory, 'references.json')
  res_path = os.path.join(directory, 'results.json')
  with open(ref_path, 'w') as f:
    json.dump({'images': [{'id': i} for i in results],
               'annotations': annotations, 'type': 'captions',
               'info': {}, 'licenses': []}, f)
  with open(res_path, 'w') as f:
    json.dump([{'image_id': i, 'caption': c} for i, c in results.items()], f)
  return ref_path, res_path


def _process_seconds(references, results, repeats: int, toolkit: bool):
  """Median wall seconds of each whole process, the two alternating."""
  with tempfile.TemporaryDirectory() as directory:
    ref_path, res_path = _write_files(references, results, directory)
    commands = {'capjax': [
        sys.executable, '-m', 'capjax.evaluate', f'--references={ref_path}',
        f'--results={res_path}', f'--metrics={",".join(FAST_METRICS)}']}
    if toolkit:
      commands['toolkit'] = [sys.executable, '-c', TOOLKIT_PROCESS,
                             ref_path, res_path]
    seconds = {name: [] for name in commands}
    for _ in range(repeats):
      for name, command in commands.items():
        start = time.perf_counter()
        subprocess.run(command, cwd=REPO, check=True, capture_output=True)
        seconds[name].append(time.perf_counter() - start)
  return {name: timing.Timing(s[0], statistics.median(s), min(s), max(s),
                              repeats, 0)
          for name, s in seconds.items()}


def run(config: dict) -> list[dict]:
  """Runs the metrics benchmark; one record per (implementation, stage)."""
  path = config.get('captions') or DEFAULT_CAPTIONS
  num_images = config['num_images']
  references, results = load_input(path, num_images)
  num_captions = num_images + sum(map(len, references.values()))
  common = {'benchmark': 'metrics', 'num_images': num_images,
            'num_captions': num_captions}
  stages, scores = _capjax(references, results, config)
  toolkit_stages, toolkit_scores = None, None
  if config.get('toolkit', True):
    try:
      import pycocoevalcap  # pylint: disable=g-import-not-at-top
    except ImportError:
      pycocoevalcap = None
    if pycocoevalcap is not None:  # _toolkit imports the parts it runs
      toolkit_stages, toolkit_scores = _toolkit(references, results)
  if config.get('process_repeats'):
    process = _process_seconds(references, results,
                               config['process_repeats'],
                               toolkit_stages is not None)
    stages['process'] = process['capjax']
    if 'toolkit' in process:
      toolkit_stages['process'] = process['toolkit']
  records = []
  for impl, timings in (('capjax', stages), ('toolkit', toolkit_stages)):
    for stage, t in (timings or {}).items():
      record = dict(common, impl=impl, stage=stage,
                    seconds=t.median_seconds, min_seconds=t.min_seconds,
                    max_seconds=t.max_seconds,
                    images_per_s=num_images / t.median_seconds,
                    repeats=t.repeats, warmup=t.warmup)
      if impl == 'capjax' and toolkit_stages and stage in toolkit_stages:
        record['speedup_vs_toolkit'] = (
            toolkit_stages[stage].median_seconds / t.median_seconds)
      if stage == 'total':
        record['metrics'] = ','.join(FAST_METRICS)
        if impl == 'capjax' and toolkit_scores:
          record['max_abs_diff_vs_toolkit'] = max(
              abs(scores[k] - toolkit_scores[k]) for k in toolkit_scores)
      records.append(record)
  return records
