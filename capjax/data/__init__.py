"""Datasets (TFDS builders), vocabulary and grain input pipelines."""
