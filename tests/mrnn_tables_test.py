"""The m-RNN README tables from a trained workdir (a tiny shapes m-RNN)."""

import os
import shutil
import tempfile

from absl.testing import absltest

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


if __name__ == '__main__':
  absltest.main()
