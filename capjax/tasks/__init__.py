"""Tasks: what a model learns, chosen by `config.task` (DESIGN.md)."""
