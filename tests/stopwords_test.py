"""Stop-word removal for seed 000's preprocessing."""

from absl.testing import absltest

from capjax.data import stopwords


class StopWordsTest(absltest.TestCase):

  def test_function_words_go_content_words_stay(self):
    self.assertEqual(
        stopwords.remove('A dog is running through the grass with a ball .'),
        'dog running grass ball')

  def test_the_list_in_use_is_named(self):
    stop, source = stopwords.words()
    self.assertIn(source, ('nltk', 'capjax'))
    self.assertIn('the', stop)
    self.assertNotIn('dog', stop)


if __name__ == '__main__':
  absltest.main()
