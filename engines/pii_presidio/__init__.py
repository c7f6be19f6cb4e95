"""The detect stage's default engine: presidio-analyzer with spaCy English NER and validated
patterns, over the transcript as written and as spoken ("four one one one …")."""
