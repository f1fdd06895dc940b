"""One module per `python -m capjax.benchmark WHAT` benchmark."""
