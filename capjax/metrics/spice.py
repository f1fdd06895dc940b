"""SPICE through the official jar (as the COCO toolkit runs it).

SPICE parses captions into scene graphs with Stanford CoreNLP 3.6.0, whose
jars (`stanford-corenlp-3.6.0.jar` and `-models.jar`) must sit in the SPICE
`lib/` directory. `pycocoevalcap` downloads them on first use; capjax never
downloads, so without them SPICE is reported unavailable with that reason.
"""

import dataclasses
import json
import math
import os
import tempfile
from typing import Sequence

import numpy as np

from capjax.metrics import java as java_lib

TIMEOUT_S = 1800.0
_JAR = ('spice', 'spice-1.0.jar')
CORENLP_JARS = ('stanford-corenlp-3.6.0.jar',
                'stanford-corenlp-3.6.0-models.jar')


@dataclasses.dataclass(frozen=True)
class SpiceResult:
  score: float  # mean F-score over images (NaNs propagate, as the toolkit)
  per_image: np.ndarray  # [num_images] float64


def check_models(jar_path: str) -> None:
  """Raises `Unavailable` unless the CoreNLP jars SPICE needs are present."""
  lib = os.path.join(os.path.dirname(jar_path), 'lib')
  missing = [name for name in CORENLP_JARS
             if not os.path.isfile(os.path.join(lib, name))]
  if missing:
    raise java_lib.Unavailable(
        f'SPICE needs the Stanford CoreNLP 3.6.0 models, which are missing '
        f'({", ".join(missing)} not in {lib}); put them there (pycocoevalcap '
        'downloads them on first use, which needs internet).')


def compute(candidates: Sequence[str],
            references: Sequence[Sequence[str]],
            image_ids: Sequence[object] | None = None,
            jar: str | None = None,
            java: str = 'java',
            timeout: float = TIMEOUT_S) -> SpiceResult:
  """SPICE of tokenized captions (space-joined strings, as the toolkit).

  Args:
    candidates: [num_images] tokenized candidate strings.
    references: [num_images] lists of tokenized reference strings.
    image_ids: [num_images] ids written to the jar's input (default 0..N-1).
    jar: spice-1.0.jar; by default the one inside `pycocoevalcap`.
    java: the Java executable.
    timeout: seconds before the jar is stopped.

  Returns:
    A `SpiceResult`; raises `java.Unavailable` when SPICE cannot run.
  """
  java_path = java_lib.find_java(java)
  jar_path = java_lib.find_jar(jar, *_JAR, what='SPICE')
  check_models(jar_path)
  if image_ids is None:
    image_ids = list(range(len(candidates)))
  records = [{'image_id': i, 'test': c, 'refs': list(r)}
             for i, c, r in zip(image_ids, candidates, references)]
  with tempfile.TemporaryDirectory(prefix='capjax_spice_') as workdir:
    in_path = os.path.join(workdir, 'input.json')
    out_path = os.path.join(workdir, 'output.json')
    with open(in_path, 'w') as f:
      json.dump(records, f)
    command = [java_path, '-jar', '-Xmx8G', jar_path, in_path, '-cache',
               os.path.join(workdir, 'cache'), '-out', out_path, '-subset',
               '-silent']
    java_lib.run(command, cwd=os.path.dirname(jar_path), timeout=timeout,
                 what='SPICE')
    try:
      with open(out_path) as f:
        results = json.load(f)
    except (OSError, ValueError) as e:
      raise java_lib.Unavailable(f'SPICE wrote no readable output: {e}') from e
  by_id = {str(item['image_id']): item for item in results}

  def f_score(item):
    try:
      return float(item['scores']['All']['f'])
    except (KeyError, TypeError, ValueError):
      return math.nan

  per_image = np.array([f_score(by_id.get(str(i), {})) for i in image_ids])
  return SpiceResult(score=float(np.mean(per_image)), per_image=per_image)
