"""IAPR TC-12 annotations, split lists and SIMPLIcity classes."""

import os
import tempfile

from absl.testing import absltest

from capjax.data import flickr8k
from capjax.data import iapr_tc12

ENG = """<DOC>
<DOCNO>annotations/01/1000.eng</DOCNO>
<TITLE>Godchild Cristian</TITLE>
<DESCRIPTION>a dark-skinned boy wearing a knitted woolly hat; a grey
railing in the foreground; the caf\xe9 behind;</DESCRIPTION>
<NOTES></NOTES>
<IMAGE>images/01/1000.jpg</IMAGE>
</DOC>
"""


class IaprTc12Test(absltest.TestCase):

  def setUp(self):
    super().setUp()
    tmp = tempfile.TemporaryDirectory()
    self.addCleanup(tmp.cleanup)
    self.root = tmp.name
    folder = os.path.join(self.root, 'annotations_complete_eng', '01')
    os.makedirs(folder)
    with open(os.path.join(folder, '1000.eng'), 'w',
              encoding='latin-1') as f:
      f.write(ENG)
    with open(os.path.join(folder, '1001.eng'), 'w',
              encoding='latin-1') as f:
      f.write(ENG.replace('1000', '1001').replace('boy', 'girl'))

  def test_description_is_split_into_clauses_read_as_latin_1(self):
    annotations = iapr_tc12.read_annotations(self.root)
    first = annotations['01/1000']
    self.assertEqual(first.image, 'images/01/1000.jpg')
    self.assertEqual(first.clauses, (
        'a dark-skinned boy wearing a knitted woolly hat',
        'a grey railing in the foreground', 'the caf\xe9 behind'))
    self.assertIn('girl', annotations['01/1001'].clauses[0])

  def test_split_lists_in_every_spelling_and_a_missing_image(self):
    annotations = iapr_tc12.read_annotations(self.root)
    path = os.path.join(self.root, 'train.txt')
    with open(path, 'w') as f:
      f.write('images/01/1001.jpg\n01/1000\n1001\n')
    got = iapr_tc12.read_split_list(path, annotations)
    self.assertEqual([a.key for a in got], ['01/1001', '01/1000', '01/1001'])
    with open(path, 'w') as f:
      f.write('01/1000\n\n02/7\n')
    with self.assertRaisesRegex(ValueError, r'train.txt:3: .*02/7'):
      iapr_tc12.read_split_list(path, annotations)

  def test_a_file_without_description_is_named(self):
    path = os.path.join(self.root, 'bad.eng')
    with open(path, 'w') as f:
      f.write('<DOC><IMAGE>images/01/9.jpg</IMAGE></DOC>')
    with self.assertRaisesRegex(ValueError, 'bad.eng: no <DESCRIPTION>'):
      iapr_tc12.read_annotation(path)

  def test_simplicity_classes(self):
    self.assertEqual(iapr_tc12.simplicity_class('0.jpg'), (0, 'africa'))
    self.assertEqual(iapr_tc12.simplicity_class('images/314.jpg'),
                     (3, 'buses'))
    self.assertEqual(iapr_tc12.simplicity_class('999.jpg'), (9, 'food'))
    with self.assertRaisesRegex(ValueError, '0.jpg .. 999.jpg'):
      iapr_tc12.simplicity_class('1000.jpg')

  def test_flickr30k_results_token_file_reads_like_flickr8k(self):
    # results_20130124.token has Flickr8k's `<file>.jpg#<k>\t<caption>`.
    path = os.path.join(self.root, 'results_20130124.token')
    with open(path, 'w') as f:
      f.write('1000092795.jpg#1\tTwo young guys .\n'
              '1000092795.jpg#0\tTwo men in green shirts .\n')
    self.assertEqual(flickr8k.read_token_file(path), {
        '1000092795.jpg': ['Two men in green shirts .', 'Two young guys .']})


if __name__ == '__main__':
  absltest.main()
