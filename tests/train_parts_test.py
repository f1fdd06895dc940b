"""The train-step-by-parts benchmark: one record per part and side."""

from absl.testing import absltest

from capjax.benchmarks import torch_reference
from capjax.benchmarks import train_parts

MODEL = dict(batch=4, max_len=6, vocab=50, hidden=16, embed=8)


class TrainPartsTest(absltest.TestCase):

  def test_every_part_is_timed_on_each_side(self):
    records = train_parts.run(dict(MODEL, repeats=1, warmup=1,
                                   dtype=['float32']))
    sides = {(r['impl'], r['part']) for r in records}
    expected = {('capjax', part) for part in train_parts.PARTS}
    expected.add(('capjax', 'output_loss_unfused'))
    if torch_reference.available():
      expected |= {('pytorch', part) for part in train_parts.PARTS}
    self.assertEqual(sides, expected)
    for record in records:
      self.assertEqual(record['batch'], MODEL['batch'])
      self.assertGreater(record['ms'], 0)
      self.assertLessEqual(record['min_ms'], record['ms'])

  def test_other_decoders_are_refused(self):
    with self.assertRaisesRegex(ValueError, '--decoder=gru'):
      train_parts.run(dict(MODEL, decoder='gru', repeats=1, warmup=1))


if __name__ == '__main__':
  absltest.main()
