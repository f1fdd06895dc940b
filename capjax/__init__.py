"""capjax: speed-focused JAX/Flax image captioning and image-text retrieval."""

__version__ = '0.1.0'
