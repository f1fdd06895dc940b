"""Tests of the caption gallery and the printed summary."""

import os
import shutil
import tempfile

from absl.testing import absltest
import numpy as np
from PIL import Image

from capjax import report


def _image(value):
  return np.full((32, 32, 3), value, np.uint8)


class GalleryTest(absltest.TestCase):

  def test_writes_png_and_html_with_every_caption(self):
    root = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, root)
    captions = ['a red circle', 'a <blue> square & more', 'a green cross']
    png, page = report.write_gallery(
        os.path.join(root, 'test_gallery'),
        images=[_image(50), _image(100), _image(150)],
        captions=captions, correct=[True, False, None],
        attention=[np.full((3, 16), 1 / 16)] * 3, title='three')
    with Image.open(png) as picture:
      self.assertEqual(picture.size[0], 3 * (report.TILE + 8))
    with open(page) as f:
      html = f.read()
    self.assertIn('a &lt;blue&gt; square &amp; more', html)
    self.assertEqual(html.count('<figure>'), 3)
    self.assertEqual(html.count('class="wrong"'), 1)
    self.assertEqual(sorted(os.listdir(root)),
                     ['test_gallery.html', 'test_gallery.png'])

  def test_verdict_bar_is_green_or_red(self):
    for verdict, colour in ((True, report.GREEN), (False, report.RED)):
      picture = report.gallery_image([_image(0)], ['a'], [verdict])
      self.assertEqual(picture.getpixel((10, 1)), colour)

  def test_attention_overlay_lights_the_attended_cell(self):
    alpha = np.zeros(16)
    alpha[0] = 1.0  # top-left cell of a 4x4 grid
    overlay = np.asarray(report.attention_overlay(_image(200), alpha, 48))
    self.assertGreater(overlay[2, 2].mean(), 150)
    self.assertLess(overlay[45, 45].mean(), 60)

  def test_maps_are_drawn_for_content_words_only(self):
    self.assertEqual(
        report.chosen_words('a small red circle to the left of it'),
        [(1, 'small'), (2, 'red'), (3, 'circle'), (6, 'left')])

  def test_metrics_table_lists_known_keys_first(self):
    table = report.format_metrics_table(
        {'test': {'CIDEr': 1.5, 'zeta': 2.0, 'num_images': 40.0}})
    lines = table.splitlines()
    self.assertEqual([line.split()[0] for line in lines],
                     ['metric', 'CIDEr', 'num_images', 'zeta'])
    self.assertIn('1.5000', lines[1])


if __name__ == '__main__':
  absltest.main()
