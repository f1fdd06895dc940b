"""The command lines quoted in README.md and in docstrings still work.

Nothing is run or trained: each `python -m capjax.X` must name a module; each
`--flag` must be one its file (or a capjax module it imports) defines; each
`--config=FILE[:VARIANT]` must build as `capjax.main` builds it, with its
`--config.a.b=value` overrides; every `make` target, `launch/` script (and
the environment variables set for it) and `docs/`, `configs/`, `launch/`,
`tests/` or `capjax/` path the text names must exist. Placeholders are
allowed where a reader must fill in a value: `...`, an ALLCAPS word
(`weights=DIR`, `cleaning=NAME`) and `WHAT [--flags]`.
"""

import ast
import functools
import glob
import importlib.util
import os
import re
import shlex

from absl import app  # noqa: F401  (defines the absl flags every entry has)
from absl import flags
from absl.testing import absltest
from ml_collections import config_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What `python -m capjax.X` accepts without defining it: absl's own flags.
ABSL_FLAGS = frozenset(
    {'help', 'helpshort', 'helpfull', 'helpxml'} |
    {f.name for module, defined in flags.FLAGS.flags_by_module_dict().items()
     if module.startswith('absl.') for f in defined})
# Variables a launch script need not read itself: they reach python or jax.
PASSED_THROUGH_ENV = ('XLA_FLAGS', 'JAX_PLATFORMS', 'PY', 'PYTHON')
# Repository paths the text may name, then checked to exist.
PATH_REF = re.compile(
    r'(?<![\w/.<$])((?:docs|configs|launch|tests|capjax|\.ci)/[\w./-]*\w)')
CALL = re.compile(
    r'^((?:[A-Z_0-9]+=\S+ )*)(python -m |make |bash |sbatch |launch/)')


def is_placeholder(word: str) -> bool:
  """`...`, `DIR`, `PATH/TO/x`: a value the reader fills in."""
  return '...' in word or bool(re.match(r'^[A-Z][A-Z_]*([/.]|$)', word))


def split_markdown(text: str) -> tuple[list[str], list[str]]:
  """Splits markdown into fenced code blocks and prose paragraphs.

  Args:
    text: markdown.

  Returns:
    (the text of each fenced block, each paragraph outside them as one line).
  """
  blocks, paragraphs, lines, para = [], [], [], []
  in_fence = False
  for line in text.splitlines():
    if line.lstrip().startswith('```'):
      if in_fence:
        blocks.append('\n'.join(lines))
        lines = []
      in_fence = not in_fence
      continue
    if in_fence:
      lines.append(line)
    elif line.strip():
      para.append(line.strip())
    elif para:
      paragraphs.append(' '.join(para))
      para = []
  if para:
    paragraphs.append(' '.join(para))
  return blocks, paragraphs


def block_commands(block: str) -> list[str]:
  """Lines of shell: continuations joined, `$ ` dropped, `for` expanded."""
  commands, loop = [], None
  for line in re.sub(r'\\\n\s*', ' ', block).splitlines():
    line = line.strip().removeprefix('$ ')
    if m := re.match(r'for (\w+) in (.*); do$', line):
      loop = (m.group(1), m.group(2).split())
    elif line == 'done':
      loop = None
    elif loop:
      commands += [line.replace('$' + loop[0], v) for v in loop[1]]
    else:
      commands.append(line)
  return commands


def markdown_commands(text: str) -> list[str]:
  """Every code block line and every inline code span of markdown."""
  blocks, paragraphs = split_markdown(text)
  return ([c for b in blocks for c in block_commands(b)] +
          [s for p in paragraphs for s in re.findall(r'`([^`]+)`', p)])


def docstring_commands(doc: str) -> list[str]:
  """Indented command lines of a docstring, and its inline code spans."""
  return ([c for c in block_commands(doc) if CALL.match(c)] +
          re.findall(r'`([^`]+)`', ' '.join(doc.split())))


def shell_words(command: str) -> list[str]:
  """shlex words, with `[optional]` brackets and `# comments` gone."""
  command = re.sub(r'(\.py)\[(:[^\]]*)\]', r'\1\2', command)
  command = command.replace('[', ' ').replace(']', ' ')
  try:
    return shlex.split(command, comments=True)
  except ValueError:
    return command.split()


def defined_flags(path: str) -> tuple[dict[str, bool], set[str]]:
  """({flag: is_bool} a file defines, the capjax files it imports)."""
  found, imported = {}, set()
  for node in ast.walk(ast.parse(open(path).read())):
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr.startswith('DEFINE') and node.args
        and isinstance(node.args[0], ast.Constant)):
      found[node.args[0].value] = 'bool' in node.func.attr
    if isinstance(node, ast.ImportFrom) and (node.module or '').startswith(
        'capjax'):
      for alias in node.names:
        for name in (f'{node.module}.{alias.name}', node.module):
          spec = find_module(name)
          if spec and spec.origin and spec.origin.endswith('.py'):
            imported.add(spec.origin)
            break
  return found, imported


@functools.cache
def file_flags(path: str) -> dict[str, bool]:
  """{flag: is_bool} defined by a file and the capjax modules it imports."""
  found, todo, seen = {}, [path], {path}
  while todo:
    defined, imported = _defined_flags(todo.pop())
    found.update(defined)
    todo += sorted(imported - seen)
    seen |= imported
  return found


_defined_flags = functools.cache(defined_flags)


def benchmark_names(path: str) -> set[str]:
  """The keys of `BENCHMARKS` in capjax/benchmark.py: the valid WHATs."""
  tree = ast.parse(open(path).read())
  return set(next(ast.literal_eval(node.value) for node in tree.body
                  if isinstance(node, ast.Assign)
                  and getattr(node.targets[0], 'id', '') == 'BENCHMARKS'))


def find_module(name: str):
  """The import spec of a dotted module name, or None when there is none."""
  try:
    return importlib.util.find_spec(name)
  except (ImportError, ValueError):
    return None


@functools.cache
def load_config(spec: str, overrides: tuple[str, ...] = ()):
  """The config `--config=spec` and overrides give, or the error's text."""
  path, colon, variant = spec.partition(':')
  argv = ['prog', f'--config={os.path.join(ROOT, path)}{colon}{variant}',
          *overrides]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, '', flag_values=values,
                                  lock_config=True, sys_argv=argv)
  try:
    values(argv)
    return values.config
  except Exception as e:  # pylint: disable=broad-except
    # The last line of a config file's traceback is its own message.
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[-1] if lines else type(e).__name__


def has_key(config, dotted: str) -> bool:
  """Whether a config has the field `dotted` ('train.num_steps')."""
  for part in dotted.split('.'):
    if not hasattr(config, 'keys') or part not in config:
      return False
    config = config[part]
  return True


def all_configs() -> list[str]:
  """Every config file, relative to the repository root."""
  return sorted(os.path.relpath(p, ROOT) for p in glob.glob(
      os.path.join(ROOT, 'configs', '**', '*.py'), recursive=True))


class Checker:
  """Collects what is wrong with the commands of a text."""

  def __init__(self):
    self.problems = []
    self.all_flags = set(ABSL_FLAGS)
    for path in glob.glob(os.path.join(ROOT, 'capjax', '**', '*.py'),
                          recursive=True):
      self.all_flags |= set(file_flags(path))
    makefile = open(os.path.join(ROOT, 'Makefile')).read()
    self.make_targets = set(re.findall(r'^([\w-]+):', makefile, re.M))

  def fail(self, where: str, command: str, what: str):
    """Records one problem: the file, the command and what is wrong."""
    self.problems.append(f'{where}: `{command}`: {what}')

  def check_text(self, text: str, where: str, commands: list[str]):
    """Checks `commands` (taken from `text`) and the paths `text` names."""
    for command in commands:
      self.check_command(command, where)
    for path in PATH_REF.findall(text):
      if not is_placeholder(path) and not os.path.exists(
          os.path.join(ROOT, path)):
        self.fail(where, path, 'no such file in the repository')

  def check_command(self, command: str, where: str):
    """Checks one shell line or inline code span."""
    words = shell_words(command)
    env = []
    while words and re.match(r'^[A-Z_0-9]+=', words[0]):
      env.append(words.pop(0).split('=')[0])
    if not words:
      return
    if words[0].startswith('python') and words[1:2] == ['-m']:
      if len(words) > 2 and words[2].startswith('capjax'):
        self.check_python(command, words[2], words[3:], where)
    elif words[0] == 'make':
      for target in words[1:]:
        if target not in self.make_targets:
          self.fail(where, command, f'the Makefile has no target {target}')
    elif words[0].startswith('--'):  # flags quoted on their own
      for word in words:
        self.check_loose_flag(word, command, where)
    for word in words:
      if re.match(r'^configs/\S+\.py:', word):
        self.check_config(word, [], command, where)
    scripts = [w for w in words if w.startswith('launch/')]
    for script in scripts:
      if not os.path.exists(os.path.join(ROOT, script)):
        self.fail(where, command, f'no script {script}')
    if scripts and os.path.isfile(os.path.join(ROOT, scripts[0])):
      source = open(os.path.join(ROOT, scripts[0])).read()
      for name in env:
        if name not in PASSED_THROUGH_ENV and name not in source:
          self.fail(where, command, f'{scripts[0]} does not read ${name}')
      if '-m capjax.main' in source and '"$@"' in source:  # forwards flags
        after = words[words.index(scripts[0]) + 1:]
        self.check_python(command, 'capjax.main',
                          [w for w in after if w.startswith('--')], where)

  def check_loose_flag(self, word: str, command: str, where: str):
    """A flag quoted without its module: some entry point or config has it."""
    name, _, value = word[2:].partition('=')
    if name == 'config' and value and not is_placeholder(value):
      self.check_config(value, [], command, where)
    elif name.startswith('config.'):
      key = name[len('config.'):]
      if not is_placeholder(key) and not any(
          has_key(load_config(c), key) for c in all_configs()):
        self.fail(where, command, f'no config has the key {key}')
    elif word.startswith('--') and not name.startswith('xla_'):
      if name not in self.all_flags and name != 'flags':
        self.fail(where, command, f'no entry point defines --{name}')

  def check_python(self, command: str, module: str, args: list[str],
                   where: str):
    """`python -m module args`: the module, its flags, its config."""
    spec = find_module(module)
    if spec is None:
      self.fail(where, command, f'no module {module}')
      return
    defined = dict(file_flags(spec.origin))
    defined.update({f: True for f in ABSL_FLAGS})
    config, overrides, positional = None, [], []
    args = list(args)
    while args:
      arg = args.pop(0)
      if not arg.startswith('--'):
        positional.append(arg)
        continue
      name, eq, value = arg[2:].partition('=')
      if name.startswith('config.'):
        overrides.append(arg)
      elif name == 'flags':  # `[--flags]`: any of them
        continue
      elif name not in defined and not (name.startswith('no') and
                                        defined.get(name[2:])):
        self.fail(where, command, f'{module} has no flag --{name}')
      else:
        if not eq and not defined.get(name, True) and args:
          value = args.pop(0)
        if name == 'config':
          config = value
    if module == 'capjax.benchmark':
      self.check_benchmark(positional[:1], spec.origin, command, where)
    if config and not is_placeholder(config):
      self.check_config(config, overrides, command, where)
    else:
      for override in overrides:
        self.check_loose_flag(override, command, where)

  def check_benchmark(self, what, path, command, where):
    """`python -m capjax.benchmark WHAT`: WHAT is in `BENCHMARKS`."""
    names = benchmark_names(path)
    if what != ['WHAT'] and (not what or what[0] not in names):
      self.fail(where, command, f'benchmark {what} is none of {sorted(names)}')

  def check_config(self, spec, overrides, command, where):
    """`--config=spec` builds, and takes `--config.a.b=v` overrides."""
    path, _, variant = spec.partition(':')
    if not os.path.exists(os.path.join(ROOT, path)):
      self.fail(where, command, f'no config file {path}')
      return
    config = load_config(path if variant == '...' else spec)
    if isinstance(config, str):
      rejected = [w for w in re.findall(r'=([^,]+)', variant)
                  if is_placeholder(w) and f"'{w}'" in config]
      if not rejected:  # not just a rejected placeholder value
        self.fail(where, command, f'{spec} does not build: {config}')
      return
    for override in overrides:
      key = override[2:].partition('=')[0][len('config.'):]
      if not has_key(config, key):
        self.fail(where, command, f'{spec} has no key {key}')
        return
    if overrides:
      result = load_config(spec, tuple(overrides))
      if isinstance(result, str):
        self.fail(where, command, f'the overrides fail: {result}')


def check_markdown(text: str, where: str = 'README.md') -> list[str]:
  """The problems of a markdown text's commands (empty when all are true)."""
  checker = Checker()
  checker.check_text(text, where, markdown_commands(text))
  return checker.problems


def python_files() -> list[str]:
  """capjax's and the configs' Python files, relative to the root."""
  return sorted(os.path.relpath(p, ROOT) for pattern in (
      'capjax/**/*.py', 'configs/**/*.py') for p in glob.glob(
          os.path.join(ROOT, pattern), recursive=True))


def docstring(path: str) -> str:
  """The module docstring of a file under the repository root."""
  source = open(os.path.join(ROOT, path)).read()
  return ast.get_docstring(ast.parse(source), clean=True) or ''


class ReadmeCommandsTest(absltest.TestCase):

  def test_the_readme_commands_are_true(self):
    text = open(os.path.join(ROOT, 'README.md')).read()
    self.assertGreater(
        sum('python -m capjax' in c for c in markdown_commands(text)), 40,
        'the README should quote its commands: is the extraction broken?')
    self.assertEqual(check_markdown(text), [])

  def test_the_docstring_commands_are_true(self):
    checker = Checker()
    for path in python_files():
      doc = docstring(path)
      checker.check_text(doc, path, docstring_commands(doc))
    for path in sorted(glob.glob(os.path.join(ROOT, 'launch', '*'))):
      header = re.match(r'(#.*\n)*', open(path).read().partition('\n')[2])
      doc = re.sub(r'^# ?', '', header.group(0), flags=re.M)
      checker.check_text(doc, os.path.relpath(path, ROOT),
                         [c for c in block_commands(doc) if CALL.match(c)])
    self.assertEqual(checker.problems, [])

  def test_each_config_docstring_holds_the_command_that_runs_it(self):
    for path in all_configs():
      commands = [c for c in block_commands(docstring(path))
                  if c.startswith('python -m capjax.')]
      self.assertTrue(
          any(re.search(rf'--config={re.escape(path)}(:\S*)?(\s|$)', c)
              for c in commands),
          f'{path}: its docstring has no command with --config={path}')

  def test_every_benchmark_is_listed_and_has_a_command(self):
    names = benchmark_names(os.path.join(ROOT, 'capjax', 'benchmark.py'))
    readme = ' '.join(open(os.path.join(ROOT, 'README.md')).read().split())
    listed = re.search(r'WHAT is (.*?)\. ', readme)
    self.assertIsNotNone(listed, 'the README no longer says what WHAT is')
    self.assertEqual(set(re.findall(r'`(\w+)`', listed.group(1))), names)
    for text in (readme, docstring('capjax/benchmark.py')):
      shown = set(re.findall(r'python -m capjax\.benchmark (\w+)',
                             ' '.join(text.split())))
      self.assertEmpty(names - shown)

  def test_a_broken_command_is_reported(self):
    good = """
        Train: `python -m capjax.main --config=configs/captioning/shapes.py:tiny
        --workdir=runs/x --config.train.num_steps=5`.

        ```
        python -m capjax.caption --workdir=runs/x a.png [--beam_size=3]
        launch/local_multiprocess.sh 2 --config=... --workdir=...
        ```

        Placeholders: `configs/captioning/flickr8k_seed000.py:cleaning=NAME`.
        """
    self.assertEqual(check_markdown(good), [])
    broken = {
        '`python -m capjax.mian --workdir=x`': 'no module capjax.mian',
        '`python -m capjax.caption --workdir=x --beam_sise=3 a.png`':
            'capjax.caption has no flag --beam_sise',
        '`python -m capjax.main --config=configs/captioning/shape.py '
        '--workdir=x`': 'no config file configs/captioning/shape.py',
        '`python -m capjax.main --config=configs/captioning/shapes.py:modle=m'
        ' --workdir=x`': 'does not build',
        '`python -m capjax.main --config=configs/captioning/shapes.py '
        '--workdir=x --config.train.nmu_steps=3`':
            'shapes.py has no key train.nmu_steps',
        '`python -m capjax.main --config=configs/captioning/shapes.py '
        '--workdir=x --config.train.num_steps=many`': 'the overrides fail',
        '`python -m capjax.benchmark trian_step`': "['trian_step'] is none",
        '`configs/captioning/flickr8k_seed000.py:cleaning=nme`':
            "Unknown cleaning='nme'",
        '`make demoo`': 'no target demoo',
        '`FOO=1 bash launch/flickr8k_demo.sh`': 'does not read $FOO',
        '`launch/local_multiprocess.sh 2 --config=configs/captioning/shapes.py'
        ' --wokrdir=x`': 'capjax.main has no flag --wokrdir',
        '`--config.eval.bem_size=3`': 'no config has the key eval.bem_size',
        '`--beam_sise`': 'no entry point defines --beam_sise',
        '![x](docs/no_such_figure.png)': 'docs/no_such_figure.png',
    }
    for snippet, message in broken.items():
      problems = check_markdown(f'Some text.\n\n{snippet}\n')
      self.assertTrue(any(message in p for p in problems),
                      f'{snippet} gave {problems}')


if __name__ == '__main__':
  absltest.main()
