r"""Retrieve images for a sentence, or sentences for an image.

  python -m capjax.retrieve --workdir=runs/ret --index=test
  python -m capjax.retrieve --workdir=runs/ret --index=test \
      --text="a red circle"
  python -m capjax.retrieve --workdir=runs/ret --index=test --image=cat.png
  python -m capjax.retrieve --workdir=runs/ret --index=photos/ \
      --image=cat.png --sentences=captions.txt --top_k=10 --json

`--index` names a split of the workdir's dataset or a folder of images; its
embeddings are computed once and saved under `<workdir>/index/`. `--text`
prints the top K indexed images, `--image` the top K sentences (the split's
captions, or the lines of `--sentences`). `--json` prints a list of
{rank, score, image_id or sentence, references}; `--gallery=FILE.png` draws
a text query's results. A `--text` without words is an `error:` line; its
words missing from the vocabulary are named in one warning line.
"""

import json
import sys

from absl import app
from absl import flags

from capjax import flag_errors
from capjax import logs
from capjax import retrieval_index
from capjax.data import images as images_lib

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained retrieval workdir.')
_INDEX = flags.DEFINE_string(
    'index', 'test', 'A split of the dataset, or a folder of images.')
_TEXT = flags.DEFINE_string('text', None, 'A sentence: find images.')
_IMAGE = flags.DEFINE_string('image', None, 'An image file: find sentences.')
_SENTENCES = flags.DEFINE_string(
    'sentences', None, 'A text file, one sentence a line, for --image.')
_TOP_K = flags.DEFINE_integer('top_k', 5, 'Results per query.')
_JSON = flags.DEFINE_bool('json', False, 'Print the results as JSON.')
_GALLERY = flags.DEFINE_string(
    'gallery', None, 'Write a PNG of a --text query\'s images here.')
_CHECKPOINT = flags.DEFINE_enum(
    'checkpoint', 'latest', ['latest', 'best'], 'Which checkpoint to use.')
flags.mark_flag_as_required('workdir')


def _print(results, key):
  for r in results:
    line = f'{r["rank"]:>3}  {r["score"]:8.4f}  {r[key]}'
    if r.get('image_id') is not None and key != 'image_id':
      line += f'  (image {r["image_id"]})'
    print(line)
    if key == 'image_id':  # an image's own captions say what it shows
      for reference in r['references'][:5]:
        print(f'{"":15}| {reference}')


def main(argv):
  if len(argv) > 1:
    flag_errors.fail(f'unexpected arguments {argv[1:]}.')
  if _TEXT.value is not None and _IMAGE.value is not None:
    flag_errors.fail('give --text or --image, not both.')
  if _TOP_K.value < 1:
    flag_errors.fail('--top_k must be >= 1.')
  logs.quiet_libraries(progress=False)
  try:
    retriever = retrieval_index.Retriever(_WORKDIR.value, _CHECKPOINT.value)
    if _TEXT.value is None and _IMAGE.value is None:
      print(f'Index written to {retriever.build(_INDEX.value)}')
      return
    if _TEXT.value is not None:
      results = retriever.text_query(_INDEX.value, _TEXT.value, _TOP_K.value)
      key = 'image_id'
    else:
      results = retriever.image_query(_INDEX.value, _IMAGE.value,
                                      _TOP_K.value, _SENTENCES.value)
      key = 'sentence'
    if _GALLERY.value and _TEXT.value is not None:
      retriever.text_query_gallery(_INDEX.value, _TEXT.value, results,
                                   _GALLERY.value)
  except (ValueError, FileNotFoundError, images_lib.BadImageError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
  if _JSON.value:
    print(json.dumps(results, indent=1))
  else:
    _print(results, key)


if __name__ == '__main__':
  app.run(main, flags_parser=flag_errors.parse_flags)
