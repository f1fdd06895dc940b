"""A whole config is checked before anything is written or trained."""

from absl.testing import absltest
from absl.testing import parameterized

from capjax import config_checks
from configs.captioning import shapes as shapes_config
from configs.story import flickr8k as story_config


def _config(maker=shapes_config, **overrides):
  config = maker.get_config('tiny')
  for key, value in overrides.items():
    node = config
    *path, last = key.split('.')
    for part in path:
      node = node[part]
    node[last] = value
  return config


class ConfigChecksTest(parameterized.TestCase):

  def test_the_shipped_configs_pass(self):
    config_checks.check(_config())
    config_checks.check(_config(story_config))

  def test_a_carried_story_state_needs_the_jit_path(self):
    config_checks.check(_config(story_config, **{'train.carry_state': True}))
    with self.assertRaisesRegex(config_checks.ConfigError,
                                'carry_state=True runs with parallel.mode=jit'):
      config_checks.check(_config(story_config, **{
          'train.carry_state': True, 'parallel.mode': 'pmap'}))

  @parameterized.parameters(
      ({'train.num_steps': -5}, 'config.train.num_steps=-5 must be at least 1'),
      ({'train.checkpoint_every': 0}, 'train.checkpoint_every=0'),
      ({'model.decoder': 'transformer'},
       "config.model.decoder='transformer' is unknown"),
      ({'model.cell': 'rnn'}, "config.model.cell='rnn' is unknown"),
      ({'eval.decode': 'best'}, "config.eval.decode='best' is unknown"),
      ({'dataset.name': 'flickr8k'},
       "Unknown config 'tiny' of dataset 'flickr8k'"),
      ({'dataset.name': 'mnist'}, "Unknown dataset 'mnist'"),
      ({'task': 'translation'}, "config.task='translation' is unknown"),
      ({'eval.evaluators': ('captions', 'bleurt')},
       "Unknown evaluator 'bleurt'"),
      ({'train.best_metric': 'BLEU'},
       "best_metric='BLEU' is not a metric of the evaluators"),
  )
  def test_a_bad_value_is_one_line_naming_the_key(self, overrides, message):
    with self.assertRaises(config_checks.ConfigError) as raised:
      config_checks.check(_config(**overrides))
    self.assertIn(message, str(raised.exception))
    self.assertLen(str(raised.exception).splitlines(), 1)

  def test_best_metric_must_exist_on_the_chosen_dataset(self):
    # caption_accuracy exists on shapes only: a flickr8k run must not train
    # for an hour before finding that out.
    config = _config(**{'dataset.name': 'flickr8k',
                        'dataset.builder_config': 'default'})
    with self.assertRaisesRegex(config_checks.ConfigError, 'caption_accuracy'):
      config_checks.check(config)

  def test_perplexity_is_minimised_and_scores_maximised(self):
    config = _config(**{'train.best_metric': 'perplexity'})
    self.assertEqual(config_checks.best_mode(config), 'min')
    self.assertEqual(config_checks.best_mode(_config()), 'max')


if __name__ == '__main__':
  absltest.main()
