"""Caption metrics (COCO toolkit compatible), perplexity and retrieval."""
