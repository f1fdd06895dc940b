"""The m-RNN README tables from a trained workdir (a tiny shapes m-RNN)."""

import os
import shutil
import tempfile

from absl.testing import absltest
import jax.numpy as jnp

from capjax import checkpointing
from capjax import config_base
from capjax import train
from capjax.benchmarks import mrnn_tables
from configs.mrnn import shapes as mrnn_shapes


class MRNNTablesTest(absltest.TestCase):

  def test_tables_read_a_trained_workdir(self):
    root = tempfile.mkdtemp(prefix='capjax-mrnn-tables-')
    self.addCleanup(shutil.rmtree, root, ignore_errors=True)
    config = mrnn_shapes.get_config('tiny')
    config.dataset.data_dir = os.path.join(root, 'data')
    config.train.num_steps = 2
    config.eval.splits = ('test',)
    config.eval.evaluators = ('captions', 'perplexity')
    runs = os.path.join(root, 'runs')
    train.train_and_evaluate(config, os.path.join(runs, 'mrnn'))
    table = mrnn_tables.table9(runs)
    row = next(line for line in table.splitlines()
               if line.startswith('| mrnn |'))
    self.assertNotIn('not run', row)
    self.assertIn('| RNN-Base | not run', table)
    retrieval = mrnn_tables.retrieval_table(os.path.join(runs, 'mrnn'),
                                            num_images=4, prior_images=2)
    self.assertIn('image -> sentence, Eq. 7', retrieval)
    self.assertIn('4 images x 20 sentences', retrieval)

  def test_a_damaged_workdir_is_not_told_of_a_flag_it_lacks(self):
    workdir = tempfile.mkdtemp(prefix='capjax-mrnn-tables-')
    self.addCleanup(shutil.rmtree, workdir, ignore_errors=True)
    saver = checkpointing.Checkpointer(workdir, keep=1)
    saver.save(1, {'step': 1, 'params': {'w': jnp.ones(2)}},
               config_base.base_config(), {})
    saver.wait()
    saver.close()
    latest = os.path.join(workdir, checkpointing.LATEST_DIR)
    shutil.copytree(latest, os.path.join(workdir, checkpointing.BEST_DIR))
    os.remove(os.path.join(latest, '1', 'state',
                           checkpointing.PYTREE_METADATA))
    with self.assertLogs(level='WARNING'), self.assertRaises(
        checkpointing.NoIntactCheckpointError) as e:
      mrnn_tables._restore(workdir)  # pylint: disable=protected-access
    self.assertNotIn('--checkpoint', str(e.exception))
    self.assertRegex(str(e.exception), r': train again with `python -m '
                     'capjax.main')


if __name__ == '__main__':
  absltest.main()
