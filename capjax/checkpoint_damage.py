"""What a failed checkpoint read says about the files, in one line.

Orbax and Tensorstore report a damaged checkpoint with long nested errors
(a spec dump, a chain of causes, asyncio noise from reads abandoned after
the failure). `describe_damage` reduces one to what a user can act on: the
file (or the array chunk) and whether it is truncated, missing or corrupt.
"""

import json
import os
import re
import sys

# Tensorstore status codes, as what they mean for a file.
_FILE_STATUS = {
    'OUT_OF_RANGE': 'is truncated',
    'NOT_FOUND': 'is missing',
    'DATA_LOSS': 'is corrupt',
}
_LOCAL_FILE_RE = re.compile(r'local file "([^"]+)"')
_OCDBT_KEY_RE = re.compile(
    r'reading "([^"]+)" in OCDBT database at local file "([^"]+)"')
_quiet_hook_installed = False


def quiet_abandoned_reads() -> None:
  """Drops the tracebacks of reads abandoned after a failed restore.

  When one file of a step fails, Tensorstore still completes the other
  reads and reports each to an event loop that Orbax has closed, as an
  unraisable `RuntimeError('Event loop is closed')`, and Orbax's abandoned
  read coroutines are closed with their errors: dozens of lines that say
  nothing. Those are dropped; any other unraisable error is shown.
  """
  global _quiet_hook_installed
  if _quiet_hook_installed:
    return
  previous = sys.unraisablehook

  def hook(unraisable):
    value = unraisable.exc_value
    if isinstance(value, RuntimeError) and 'Event loop is closed' in str(
        value):
      return
    code = getattr(unraisable.object, 'cr_code', None)  # a coroutine's
    if code is not None and f'{os.sep}orbax{os.sep}' in code.co_filename:
      return
    previous(unraisable)

  sys.unraisablehook = hook
  _quiet_hook_installed = True


def _status_errors(error: BaseException) -> list[str]:
  """Tensorstore's messages ('CODE: ...') in an error and its causes."""
  found, seen = [], set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    text = str(error).split(' [tensorstore_spec=')[0]
    if text.split(':', 1)[0] in _FILE_STATUS or re.match(r'[A-Z_]+: ', text):
      found.append(text)
    error = error.__cause__ or error.__context__
  return found


def describe_damage(error: BaseException) -> str:
  """What a read error says about a checkpoint's files, in one short line."""
  if isinstance(error, json.JSONDecodeError):
    return f'is not valid JSON (cut short?): {error}'
  if isinstance(error, KeyError):
    return str(error.args[0] if error.args else error).rstrip('.')
  statuses = _status_errors(error)
  if statuses:
    text = statuses[-1].splitlines()[0]
    code = text.split(':', 1)[0]
    meaning = _FILE_STATUS.get(code, f'cannot be read ({code})')
    files = _LOCAL_FILE_RE.findall(text)
    if files and not files[-1].endswith('/'):
      return f'file {files[-1]} {meaning}'
    key = _OCDBT_KEY_RE.search(text)
    if key:  # a chunk inside the database's files
      return (f'array chunk {key.group(1)} in {key.group(2)} {meaning} '
              f'({text.split(": ")[-1][:200]})')
    if files:
      return f'cannot read {files[-1]} ({text[:200]})'
  text = str(error).split(' [tensorstore_spec=')[0].split(' See full ')[0]
  return (text.splitlines() or [type(error).__name__])[0][:300].rstrip('.')
