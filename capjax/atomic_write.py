"""Writing files so that a reader never sees them half-written.

Each function writes to a temporary file in the target's directory and
renames it over the target (atomic on POSIX filesystems); on failure the
temporary file is removed and the old target, if any, is left as it was.
"""

import json
import os
import tempfile
from typing import Any


def _umask() -> int:
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
  """Writes `data` to `path` atomically, creating its directory."""
  path = os.fspath(path)
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(
      dir=directory, prefix=f'.{os.path.basename(path)}.', suffix='.tmp'
  )
  try:
    # mkstemp makes the file private (0600); a saved result gets the mode
    # any new file would get under the user's umask.
    os.chmod(tmp, 0o666 & ~_umask())
    with os.fdopen(fd, 'wb') as f:
      f.write(data)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_json(path: str | os.PathLike, payload: Any, **dump_kwargs) -> None:
  """Writes `payload` as UTF-8 JSON (ending in a newline) atomically."""
  text = json.dumps(payload, ensure_ascii=False, **dump_kwargs) + '\n'
  write_bytes(path, text.encode('utf-8'))
