"""TensorBoard scalars are named exactly as the metrics files name them."""

import tempfile

from absl.testing import absltest

from capjax import summaries


class WriterTest(absltest.TestCase):

  def test_tags_keep_the_split_and_metric_names_as_given(self):
    workdir = self.enterContext(tempfile.TemporaryDirectory())
    writer = summaries.Writer(workdir)
    # A NAME:SPLIT split and a metric with '@', which tensorboardX's
    # add_scalar renamed to 'simplicity_test/i2t_p_10/africa'.
    writer.scalars(7, {'simplicity:test/i2t_p@10/africa': 50.0,
                       'train/loss': 1.5})
    writer.scalars(9, {'train/loss': 0.25})
    writer.close()
    self.assertEqual(summaries.read_scalars(workdir), {
        'simplicity:test/i2t_p@10/africa': [(7, 50.0)],
        'train/loss': [(7, 1.5), (9, 0.25)],
    })

  def test_a_disabled_writer_writes_nothing(self):
    with tempfile.TemporaryDirectory() as workdir:
      writer = summaries.Writer(workdir, enabled=False)
      writer.scalars(1, {'train/loss': 1.0})
      writer.close()
      with self.assertRaises(FileNotFoundError):
        summaries.read_scalars(workdir)


if __name__ == '__main__':
  absltest.main()
