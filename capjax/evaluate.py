r"""Evaluates a trained workdir, or scores a COCO results file.

Re-run a workdir's evaluation from its latest checkpoint (decode the split,
score it, write `<workdir>/eval/<split>_{captions,metrics}.json` and the
gallery):

  python -m capjax.evaluate --workdir=runs/shapes --split=test [--beam_size=3]

Score a results file against COCO-format references:

  python -m capjax.evaluate --references=REFERENCES.json \
    --results=RESULTS.json --metrics=bleu,meteor,rouge,cider \
    --json=/tmp/scores.json

(the COCO toolkit's demo files in ../shared/data/coco_val2014_captions/ are
such a pair).

Prints a table of the COCO toolkit's metrics and writes them as JSON with the
toolkit's key names. The logic lives in `capjax.metrics.coco` and
`capjax.evaluators`. Scoring files imports neither JAX nor TFDS: only the
`--workdir` mode loads them, when it runs.
"""

import sys

from absl import app
from absl import flags

from capjax import flag_errors
from capjax.metrics import coco

_REFERENCES = flags.DEFINE_string(
    'references', None, 'COCO caption annotation file (the references).')
_RESULTS = flags.DEFINE_string(
    'results', None, 'COCO results file: [{"image_id", "caption"}, ...].')
_METRICS = flags.DEFINE_list(
    'metrics', list(coco.DEFAULT_METRICS),
    f'Comma-separated metrics among {",".join(coco.ALL_METRICS)}.')
_JSON = flags.DEFINE_string('json', None, 'Where to write the scores as JSON.')
_METEOR_JAR = flags.DEFINE_string(
    'meteor_jar', None, 'meteor-1.5.jar (default: the one in pycocoevalcap).')
_SPICE_JAR = flags.DEFINE_string(
    'spice_jar', None, 'spice-1.0.jar (default: the one in pycocoevalcap).')
_JAVA = flags.DEFINE_string('java', 'java', 'Java executable for METEOR/SPICE.')
_TIMEOUT = flags.DEFINE_float(
    'java_timeout', None, 'Seconds allowed to each Java metric.')
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'A training workdir to evaluate (instead of files).')
_SPLIT = flags.DEFINE_string('split', 'test', 'Split to evaluate (--workdir).')
_CHECKPOINT = flags.DEFINE_enum(
    'checkpoint', 'latest', ['latest', 'best'], 'Checkpoint (--workdir).')
_BEAM_SIZE = flags.DEFINE_integer(
    'beam_size', 0, "Beam width (--workdir); 0 keeps the config's decoder, "
    '1 is greedy.', lower_bound=0)


def _main_workdir() -> int:
  # pylint: disable=g-import-not-at-top
  from capjax import inference  # JAX, Flax and TFDS: only for this mode
  from capjax import logs
  from capjax import report as report_lib
  # pylint: enable=g-import-not-at-top
  logs.quiet_libraries()
  try:
    metrics = inference.evaluate_workdir(_WORKDIR.value, _SPLIT.value,
                               _CHECKPOINT.value, _BEAM_SIZE.value)
  except (OSError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  report_lib.print_summary({_SPLIT.value: metrics}, _WORKDIR.value)
  return 0


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  if _WORKDIR.value:
    return _main_workdir()
  if not _REFERENCES.value or not _RESULTS.value:
    raise app.UsageError('Give --workdir=DIR, or both '
                         '--references=ANNOTATIONS.json and '
                         '--results=RESULTS.json.')
  try:
    references = coco.load_references(_REFERENCES.value)
    results = coco.load_results(_RESULTS.value)
    report = coco.score_details(
        references, results, _METRICS.value, meteor_jar=_METEOR_JAR.value,
        spice_jar=_SPICE_JAR.value, java=_JAVA.value,
        timeout=_TIMEOUT.value)
  except (OSError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  print(coco.format_table(report))
  if _JSON.value:
    coco.write_json(coco.report_json(report), _JSON.value)
  return 0


if __name__ == '__main__':
  app.run(main, flags_parser=flag_errors.parse_flags)
