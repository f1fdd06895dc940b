"""Tasks: one module per kind of learning, chosen by `config.task`.

Each follows the task contract of DESIGN.md (`open_data`, `create_model`,
`init_params`, `totals`, `loss`, `summarize`, `DEFAULT_EVALUATORS`):

  multilabel       one sigmoid per tag over the image (hashtag classifier)
  language_model   next-character likelihood of plain text (story model)
"""
