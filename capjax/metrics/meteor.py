"""METEOR 1.5 through the official jar, driven the way the COCO toolkit does.

The jar runs as `java -jar -Xmx2G meteor-1.5.jar - - -stdio -l en -norm` in
its own directory (it reads `data/paraphrase-en.gz` from there). For every
image one `SCORE ||| ref 1 ||| ... ||| hypothesis` line returns statistics;
one `EVAL ||| stats ||| ...` line then returns every image's score and the
corpus score, which is the number the toolkit reports.

Missing Java or jar, a crash or a hang (the whole exchange has a timeout) all
raise `java.Unavailable` with a one-line reason.
"""

import dataclasses
import os
import subprocess
import threading
from typing import Sequence

import numpy as np

from capjax.metrics import java as java_lib

TIMEOUT_S = 600.0
_JAR = ('meteor', 'meteor-1.5.jar')


@dataclasses.dataclass(frozen=True)
class MeteorResult:
  score: float  # the jar's corpus score
  per_image: np.ndarray  # [num_images] float64


def _score_line(hypothesis: str, references: Sequence[str]) -> str:
  # The toolkit cleans the hypothesis only.
  hypothesis = hypothesis.replace('|||', '').replace('  ', ' ')
  return ' ||| '.join(('SCORE', ' ||| '.join(references), hypothesis))


def compute(candidates: Sequence[str],
            references: Sequence[Sequence[str]],
            jar: str | None = None,
            java: str = 'java',
            timeout: float = TIMEOUT_S) -> MeteorResult:
  """METEOR of tokenized captions (space-joined strings, as the toolkit).

  Args:
    candidates: [num_images] tokenized candidate strings.
    references: [num_images] lists of tokenized reference strings.
    jar: meteor-1.5.jar; by default the one inside `pycocoevalcap`.
    java: the Java executable.
    timeout: seconds for the whole exchange.

  Returns:
    A `MeteorResult`; raises `java.Unavailable` when METEOR cannot run.
  """
  java_path = java_lib.find_java(java)
  jar_path = java_lib.find_jar(jar, *_JAR, what='METEOR')
  command = [java_path, '-jar', '-Xmx2G', os.path.basename(jar_path), '-',
             '-', '-stdio', '-l', 'en', '-norm']
  try:
    process = subprocess.Popen(command, cwd=os.path.dirname(jar_path),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
  except OSError as e:
    raise java_lib.Unavailable(f'METEOR could not start: {e}') from e
  timed_out = threading.Event()

  def stop():
    timed_out.set()
    java_lib.kill_group(process)

  timer = threading.Timer(timeout, stop)
  timer.start()
  errors = []
  stderr_reader = threading.Thread(
      target=lambda: errors.append(process.stderr.read()), daemon=True)
  stderr_reader.start()
  num_images = len(candidates)
  lines = [_score_line(c, r) for c, r in zip(candidates, references)]

  def write(text):
    try:
      process.stdin.write(text.encode('utf-8'))
      process.stdin.flush()
    except (BrokenPipeError, ValueError, OSError):
      pass  # The reader sees the end of output and reports.

  def read_lines(count):
    out = []
    for _ in range(count):
      line = process.stdout.readline()
      if not line:
        break
      out.append(line.decode('utf-8').strip())
    return out

  try:
    writer = threading.Thread(
        target=write, args=(''.join(line + '\n' for line in lines),),
        daemon=True)
    writer.start()
    stats = read_lines(num_images)
    writer.join()
    if len(stats) == num_images:
      write('EVAL ||| ' + ' ||| '.join(stats) + '\n')
      scores = read_lines(num_images + 1)
    else:
      scores = []
  finally:
    timer.cancel()
    if process.stdin:
      try:
        process.stdin.close()
      except OSError:
        pass
    java_lib.kill_group(process)
    process.wait()
    stderr_reader.join(timeout=5)
  if timed_out.is_set():
    raise java_lib.Unavailable(f'METEOR timed out after {timeout:g} s and '
                               'was stopped.')
  if len(scores) != num_images + 1:
    reason = java_lib.last_line(errors[0] if errors else None)
    raise java_lib.Unavailable(
        f'METEOR stopped early: {reason or "no output from the jar"}')
  try:
    values = [float(s) for s in scores]
  except ValueError as e:
    raise java_lib.Unavailable(f'METEOR printed something unexpected: '
                               f'{e}') from e
  return MeteorResult(score=values[-1], per_image=np.array(values[:-1]))
