"""Finding Java and the toolkit's jars, for the metrics only Java can compute.

METEOR 1.5 and SPICE exist only as Java programs. Nothing here downloads:
the jars come from an installed `pycocoevalcap` or from paths the user gives,
and a missing piece is reported as `Unavailable` with a one-line reason so the
other metrics are still computed.
"""

import importlib.util
import os
import shutil
import signal
import subprocess


class Unavailable(RuntimeError):
  """A Java metric cannot run here; the message is a one-line reason."""


def toolkit_dir() -> str | None:
  """The installed `pycocoevalcap` package directory, or None."""
  try:
    spec = importlib.util.find_spec('pycocoevalcap')
  except (ImportError, ValueError):
    return None
  if spec is None or not spec.submodule_search_locations:
    return None
  return list(spec.submodule_search_locations)[0]


def find_java(java: str = 'java') -> str:
  """The path of the Java executable, or raises `Unavailable`."""
  found = shutil.which(java)
  if found is None:
    raise Unavailable(f'Java not found ("{java}" is not an executable on '
                      'PATH); install a Java runtime or pass --java.')
  return found


def find_jar(jar: str | None, *toolkit_path: str, what: str) -> str:
  """A jar given by the user, else the one inside `pycocoevalcap`.

  Args:
    jar: a path given by the user, or None.
    *toolkit_path: the jar's path inside the `pycocoevalcap` package.
    what: the metric's name, for messages.

  Returns:
    The jar's absolute path; raises `Unavailable` when it is missing.
  """
  if jar is not None:
    if not os.path.isfile(jar):
      raise Unavailable(f'{what} jar {jar} does not exist; give the path of '
                        'the jar file.')
    return os.path.abspath(jar)
  base = toolkit_dir()
  if base is None:
    raise Unavailable(f'{what} jar not found: pycocoevalcap is not installed '
                      '(pip install pycocoevalcap) and no jar path was given.')
  path = os.path.join(base, *toolkit_path)
  if not os.path.isfile(path):
    raise Unavailable(f'{what} jar not found at {path}; reinstall '
                      'pycocoevalcap or give the jar path.')
  return path


def last_line(text: str | bytes | None) -> str:
  """The last non-empty line of a process's output, for one-line reasons."""
  if text is None:
    return ''
  if isinstance(text, bytes):
    text = text.decode('utf-8', 'replace')
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  return lines[-1] if lines else ''


def kill_group(process: subprocess.Popen) -> None:
  """Kills a process started with `start_new_session=True` and its children."""
  try:
    os.killpg(process.pid, signal.SIGKILL)
  except (ProcessLookupError, PermissionError):
    pass


def run(command: list[str], *, cwd: str, timeout: float, what: str
        ) -> subprocess.CompletedProcess:
  """Runs a Java command to completion, or raises `Unavailable`.

  Args:
    command: the command line.
    cwd: its working directory.
    timeout: seconds before the process is killed.
    what: the metric's name, for messages.

  Returns:
    The completed process (exit status 0).
  """
  try:
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
  except OSError as e:
    raise Unavailable(f'{what} could not start: {e}') from e
  try:
    stdout, stderr = process.communicate(timeout=timeout)
  except subprocess.TimeoutExpired as e:
    kill_group(process)
    process.communicate()
    raise Unavailable(f'{what} timed out after {timeout:g} s and was '
                      'stopped.') from e
  done = subprocess.CompletedProcess(command, process.returncode, stdout,
                                     stderr)
  if done.returncode != 0:
    raise Unavailable(f'{what} failed (exit status {done.returncode}): '
                      f'{last_line(done.stderr) or last_line(done.stdout)}')
  return done
