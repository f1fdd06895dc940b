r"""The seed's hashtag table: BLEU-1 and P/R/F1@k of trained tag models.

  python -m capjax.tag_table \
      --workdirs=runs/tags_att,runs/tags_st,runs/tags_ml \
      [--split=test] [--limit=0] [--checkpoint=best]

Each workdir is a tag model (a captioner over tags trained with
`capjax.main`, or the multi-label classifier); each is scored on the split
of its own config's dataset, decoding with no tag twice. A workdir that is
missing, damaged or not a tag model is one `error:` line and exit code 1.
"""

import sys

from absl import app
from absl import flags
from absl import logging

from capjax import flag_errors
from capjax import report
from capjax import tagging

_WORKDIRS = flags.DEFINE_list('workdirs', None, 'Trained tag models.')
_SPLIT = flags.DEFINE_string('split', 'test', 'The split scored.')
_LIMIT = flags.DEFINE_integer('limit', 0, 'Score the first N images (0: all).')
_CHECKPOINT = flags.DEFINE_enum(
    'checkpoint', 'latest', ['latest', 'best'],
    'Which checkpoint of each workdir to use.')


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  table = {}
  for workdir in _WORKDIRS.value:
    try:
      tagger, params = tagging.from_workdir(workdir, _CHECKPOINT.value)
      source = tagging.open_split(tagger.config, _SPLIT.value)
    except (ValueError, FileNotFoundError) as e:
      print(f'error: {e}', file=sys.stderr)
      sys.exit(1)
    scores, results = tagging.score_split(tagger, params, source,
                                          limit=_LIMIT.value)
    table[workdir] = scores
    print(f'{workdir}: ' + ' | '.join(
        ' '.join(f'#{t}' for t in r.tags) for r in results[:3]))
  print(report.format_metrics_table(table))


if __name__ == '__main__':
  flags.mark_flags_as_required(['workdirs'])
  app.run(main, flags_parser=flag_errors.parse_flags)
