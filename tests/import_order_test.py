"""The import order of DESIGN.md, read from the source with `ast` (no JAX).

Imports run one way: entry points -> the loop (`train`, `inference`) ->
tasks and evaluators -> models, decoding, metrics, data -> shared helpers.
A module may import its own layer and the layers below; every module of
`capjax/` must be placed in a layer, and no import circle may exist, imports
inside functions included.
"""

import ast
import os

from absl.testing import absltest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Top layer first. A module belongs to the first layer with a prefix of it.
LAYERS = (
    ('entry points', (
        'capjax.main', 'capjax.evaluate', 'capjax.caption',
        'capjax.benchmark', 'capjax.benchmarks', 'capjax.retrieve',
        'capjax.convert_weights', 'capjax.extract_features', 'capjax.story',
        'capjax.tag_table', 'capjax.caption_stats')),
    ('the loop', (
        'capjax.train', 'capjax.inference', 'capjax.config_checks',
        'capjax.stepping', 'capjax.retrieval_index', 'capjax.extraction',
        'capjax.feature_dataset',
        'capjax.story_pipeline')),
    ('tasks and evaluators', (
        'capjax.tasks', 'capjax.evaluators', 'capjax.stories')),
    ('library', (
        'capjax.models', 'capjax.decoding', 'capjax.metrics',
        'capjax.data', 'capjax.converters', 'capjax.tagging')),
    ('shared helpers', (
        'capjax.atomic_write', 'capjax.checkpointing',
        'capjax.checkpoint_damage', 'capjax.optimizers',
        'capjax.parallel', 'capjax.losses', 'capjax.report',
        'capjax.summaries', 'capjax.logs', 'capjax.config_base',
        'capjax.faults', 'capjax.retrieval_report', 'capjax.progress',
        'capjax.flag_errors', 'capjax.preemption')),
)


def module_files(root: str, package: str = 'capjax') -> dict[str, str]:
  """Dotted module name -> file, for every .py file of the package."""
  out = {}
  for directory, _, files in os.walk(os.path.join(root, package)):
    for name in files:
      if name.endswith('.py'):
        path = os.path.join(directory, name)
        dotted = os.path.relpath(path, root)[:-3].replace(os.sep, '.')
        out[dotted.removesuffix('.__init__')] = path
  return out


def imported_modules(path: str, module: str, known) -> set[str]:
  """The package modules a file imports (at any depth of its code)."""
  with open(path) as f:
    tree = ast.parse(f.read())
  is_package = path.endswith('__init__.py')
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:
        parts = module.split('.')
        keep = len(parts) - node.level + (1 if is_package else 0)
        base = '.'.join(parts[:keep] + ([base] if base else []))
      found.add(base)
      found.update(f'{base}.{alias.name}' for alias in node.names)
  return {m for m in found if m in known and m != module}


def layer_of(module: str) -> int | None:
  for index, (_, prefixes) in enumerate(LAYERS):
    if any(module == p or module.startswith(p + '.') for p in prefixes):
      return index
  return None


def graph(root: str) -> dict[str, set[str]]:
  files = module_files(root)
  return {m: imported_modules(p, m, files) for m, p in files.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
  """Strongly connected components with more than one module (Tarjan)."""
  index, low, stack, on_stack, found = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in edges.get(v, ()):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        found.append(sorted(component))

  for v in sorted(edges):
    if v not in index:
      visit(v)
  return found


def _parent_edge(a: str, b: str) -> bool:
  """A package and its own submodules (an __init__ re-exporting them)."""
  return b.startswith(a + '.') or a.startswith(b + '.')


class ImportOrderTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.edges = graph(REPO)

  def test_every_module_has_a_layer(self):
    unplaced = sorted(m for m in self.edges
                      if m != 'capjax' and layer_of(m) is None)
    self.assertEqual(unplaced, [], 'place these modules in LAYERS')

  def test_no_module_imports_a_higher_layer(self):
    upward = []
    for module, targets in sorted(self.edges.items()):
      for target in sorted(targets):
        low, high = layer_of(module), layer_of(target)
        if low is not None and high is not None and high < low:
          upward.append(f'{module} ({LAYERS[low][0]}) imports {target} '
                        f'({LAYERS[high][0]})')
    self.assertEqual(upward, [])

  def test_no_import_circle(self):
    edges = {m: {t for t in ts if not _parent_edge(m, t)}
             for m, ts in self.edges.items()}
    self.assertEqual(circles(edges), [])

  def test_the_checks_see_a_circle_and_an_upward_import(self):
    # The checker itself: a made-up graph with a circle is caught, and the
    # real graph has the edges the layers are about.
    self.assertEqual(circles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': set()}),
                     [['a', 'b', 'c']])
    self.assertIn('capjax.tasks', self.edges['capjax.train'])
    self.assertLess(layer_of('capjax.train'), layer_of('capjax.tasks'))

  def test_no_decoding_module_at_the_top_level(self):
    top = os.listdir(os.path.join(REPO, 'capjax'))
    self.assertEqual([n for n in top if n.startswith('decoding_')], [])


if __name__ == '__main__':
  absltest.main()
