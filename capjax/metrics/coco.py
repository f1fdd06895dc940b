"""Caption scoring with the COCO toolkit's numbers: `score` and its files.

`score(references, results)` takes raw caption strings, tokenizes them as the
toolkit does (PTB rules, in Python) and returns the toolkit's keys: Bleu_1..4,
METEOR, ROUGE_L, CIDEr, SPICE. BLEU, ROUGE-L and CIDEr-D are pure NumPy;
METEOR and SPICE run the official jars when Java and the jars are there, and
are otherwise left out with a one-line reason (`score_details`).

Images are those of `results`, in the order of `references` (the toolkit
scores `cocoRes.getImgIds()`, in the annotation file's image order); that
order matters only where a caption ending in an abbreviation looks ahead into
the next one, as it does inside the toolkit's single Java tokenizer call.
"""

import dataclasses
import json
import logging
import os
from typing import Hashable, Mapping, Sequence

from capjax import atomic_write
from capjax.metrics import batch_tokenizer
from capjax.metrics import bleu
from capjax.metrics import cider
from capjax.metrics import java as java_lib
from capjax.metrics import meteor
from capjax.metrics import ngrams
from capjax.metrics import rouge
from capjax.metrics import spice

DEFAULT_METRICS = ('bleu', 'meteor', 'rouge', 'cider')
ALL_METRICS = ('bleu', 'meteor', 'rouge', 'cider', 'spice')
# Toolkit key names, in the toolkit's printing order.
KEYS = {
    'bleu': ('Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4'),
    'meteor': ('METEOR',),
    'rouge': ('ROUGE_L',),
    'cider': ('CIDEr',),
    'spice': ('SPICE',),
}

ImageId = Hashable


@dataclasses.dataclass(frozen=True)
class ScoreReport:
  """Everything `score_details` measured.

  Attributes:
    scores: toolkit key -> corpus score, for the metrics that ran.
    unavailable: metric name -> one-line reason it did not run.
    per_image: toolkit key -> [num_images] scores, in `image_ids` order.
    image_ids: the scored images.
    bleu_stats: BLEU's corpus statistics (reflen, testlen, guess, correct).
  """
  scores: dict[str, float]
  unavailable: dict[str, str]
  per_image: dict[str, list[float]]
  image_ids: list[ImageId]
  bleu_stats: bleu.BleuStats | None


def _read_json(path: str, what: str):
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{what} file {path} does not exist.')
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    # Some of json's messages end in 'at' ('Invalid control character at').
    reason = e.msg.removesuffix(' at')
    raise ValueError(f'{what} file {path} is not valid JSON ({reason} at line '
                     f'{e.lineno} column {e.colno}).') from e


def load_references(path: str) -> dict[ImageId, list[str]]:
  """Reads a COCO caption annotation file: image id -> its captions.

  Args:
    path: JSON with `annotations: [{image_id, caption}, ...]` and optionally
      `images: [{id}, ...]`, whose order the result follows (as the toolkit).

  Returns:
    image id -> reference captions, in file order.
  """
  data = _read_json(path, 'References')
  if not isinstance(data, dict) or not isinstance(
      data.get('annotations'), list):
    raise ValueError(f'References file {path} has no "annotations" list; it '
                     'must be a COCO caption annotation file.')
  captions = {}
  for image in data.get('images') or []:
    if isinstance(image, dict) and 'id' in image:
      captions.setdefault(image['id'], [])
  for k, ann in enumerate(data['annotations']):
    if not isinstance(ann, dict) or 'image_id' not in ann or not isinstance(
        ann.get('caption'), str):
      raise ValueError(f'References file {path}: annotation #{k} needs an '
                       '"image_id" and a string "caption".')
    captions.setdefault(ann['image_id'], []).append(ann['caption'])
  return {i: c for i, c in captions.items() if c}


def load_results(path: str) -> dict[ImageId, str]:
  """Reads a COCO results file `[{image_id, caption}, ...]`.

  Args:
    path: the JSON results file.

  Returns:
    image id -> caption; an image given twice is an error (the toolkit's
    scorers assert one caption per image).
  """
  data = _read_json(path, 'Results')
  if not isinstance(data, list):
    raise ValueError(f'Results file {path} must hold a JSON list of '
                     '{"image_id", "caption"} objects.')
  results = {}
  for k, item in enumerate(data):
    if not isinstance(item, dict) or 'image_id' not in item or not isinstance(
        item.get('caption'), str):
      raise ValueError(f'Results file {path}: entry #{k} needs an "image_id" '
                       'and a string "caption".')
    if item['image_id'] in results:
      raise ValueError(f'Results file {path}: image {item["image_id"]} has '
                       'more than one caption; keep one per image.')
    results[item['image_id']] = item['caption']
  return results


def _check(references: Mapping[ImageId, Sequence[str]],
           results: Mapping[ImageId, str], metrics: Sequence[str]):
  unknown = [m for m in metrics if m not in KEYS]
  if unknown:
    raise ValueError(f'Unknown metric(s) {", ".join(unknown)}; choose from '
                     f'{", ".join(ALL_METRICS)}.')
  missing = [i for i in results if i not in references]
  if missing:
    shown = ', '.join(str(i) for i in missing[:5])
    raise ValueError(f'{len(missing)} result image id(s) are not in the '
                     f'references (e.g. {shown}); results must be for '
                     'images of the reference file.')
  empty = [i for i in results if not references[i]]
  if empty:
    raise ValueError(f'Image {empty[0]} has no reference caption.')
  if not results:
    raise ValueError('There are no results to score.')


def score_details(references: Mapping[ImageId, Sequence[str]],
                  results: Mapping[ImageId, str],
                  metrics: Sequence[str] = DEFAULT_METRICS,
                  *,
                  meteor_jar: str | None = None,
                  spice_jar: str | None = None,
                  java: str = 'java',
                  timeout: float | None = None,
                  df: cider.DocumentFrequency | None = None) -> ScoreReport:
  """Scores raw captions like the COCO toolkit; see `score`.

  Returns:
    A `ScoreReport` with the scores, the reasons of metrics that could not
    run, per-image scores and BLEU's statistics.
  """
  metrics = tuple(dict.fromkeys(metrics))
  _check(references, results, metrics)
  image_ids = [i for i in references if i in results]
  ref_counts = [len(references[i]) for i in image_ids]
  ref_tokens = batch_tokenizer.tokenize_batch(
      [c for i in image_ids for c in references[i]])
  cand_tokens = batch_tokenizer.tokenize_batch(
      [results[i] for i in image_ids])
  refs = []
  start = 0
  for count in ref_counts:
    refs.append(ref_tokens[start:start + count])
    start += count

  scores, per_image, unavailable = {}, {}, {}
  bleu_stats = None
  table = None
  if {'bleu', 'cider', 'rouge'} & set(metrics):
    with batch_tokenizer.gc_paused():
      table = ngrams.build(cand_tokens, refs)
  for metric in metrics:
    if metric == 'bleu':
      result = bleu.from_table(table)
      bleu_stats = result.stats
      for k, key in enumerate(KEYS['bleu']):
        scores[key] = result.scores[k]
        per_image[key] = result.per_image[:, k].tolist()
    elif metric == 'rouge':
      result = rouge.from_table(table)
      scores['ROUGE_L'], per_image['ROUGE_L'] = (result.score,
                                                 result.per_image.tolist())
    elif metric == 'cider':
      result = cider.from_table(table, df=df)
      scores['CIDEr'], per_image['CIDEr'] = (result.score,
                                             result.per_image.tolist())
    else:
      cand_strings = [' '.join(t) for t in cand_tokens]
      ref_strings = [[' '.join(t) for t in r] for r in refs]
      kwargs = {'java': java}
      if timeout is not None:
        kwargs['timeout'] = timeout
      try:
        if metric == 'meteor':
          result = meteor.compute(cand_strings, ref_strings, jar=meteor_jar,
                                  **kwargs)
        else:
          result = spice.compute(cand_strings, ref_strings, image_ids,
                                 jar=spice_jar, **kwargs)
      except java_lib.Unavailable as e:
        unavailable[metric] = str(e)
        logging.warning('%s unavailable: %s', metric.upper(), e)
        continue
      key = KEYS[metric][0]
      scores[key], per_image[key] = result.score, result.per_image.tolist()
  ordered = {key: scores[key] for m in ALL_METRICS for key in KEYS[m]
             if key in scores}
  return ScoreReport(scores=ordered, unavailable=unavailable,
                     per_image=per_image, image_ids=image_ids,
                     bleu_stats=bleu_stats)


def score(references: Mapping[ImageId, Sequence[str]],
          results: Mapping[ImageId, str],
          metrics: Sequence[str] = DEFAULT_METRICS,
          *,
          meteor_jar: str | None = None,
          spice_jar: str | None = None,
          java: str = 'java',
          timeout: float | None = None,
          df: cider.DocumentFrequency | None = None) -> dict[str, float]:
  """Scores raw caption strings with the COCO toolkit's metrics.

  This is the function training and evaluation call; its name and signature
  are stable. Tokenization (the toolkit's PTB rules) happens inside.

  Args:
    references: image id -> its reference captions (raw strings).
    results: image id -> one generated caption (raw string); every id must
      be in `references`. Only these images are scored.
    metrics: any of 'bleu', 'meteor', 'rouge', 'cider', 'spice'.
    meteor_jar: path of meteor-1.5.jar (default: pycocoevalcap's).
    spice_jar: path of spice-1.0.jar (default: pycocoevalcap's).
    java: the Java executable for METEOR and SPICE.
    timeout: seconds allowed to each Java metric (default: the module's).
    df: CIDEr-D document frequencies of another corpus (default: counted on
      the references, as the toolkit does).

  Returns:
    Toolkit key -> corpus score ('Bleu_1'..'Bleu_4', 'METEOR', 'ROUGE_L',
    'CIDEr', 'SPICE'). A Java metric that cannot run is left out and its
    reason logged; `score_details` returns the reasons too.
  """
  return score_details(references, results, metrics, meteor_jar=meteor_jar,
                       spice_jar=spice_jar, java=java, timeout=timeout,
                       df=df).scores


def format_table(report: ScoreReport) -> str:
  """The scores as a two-column table, 3 decimals as the toolkit prints."""
  rows = [(key, f'{value:0.3f}') for key, value in report.scores.items()]
  rows += [(KEYS[m][0], f'unavailable: {reason}')
           for m, reason in report.unavailable.items()]
  width = max([len(k) for k, _ in rows] + [6])
  lines = [f'{"metric".ljust(width)}  score']
  lines += [f'{key.ljust(width)}  {value}' for key, value in rows]
  return '\n'.join(lines)


def report_json(report: ScoreReport) -> dict:
  """The JSON the command line writes: toolkit keys, then what was missing."""
  out = dict(report.scores)
  if report.unavailable:
    out['unavailable'] = dict(report.unavailable)
  if report.bleu_stats is not None:
    out['bleu_stats'] = dataclasses.asdict(report.bleu_stats)
  out['num_images'] = len(report.image_ids)
  return out


def write_json(data: dict, path: str) -> None:
  """Writes JSON atomically (temp file, then rename)."""
  atomic_write.write_json(path, data, indent=2)
