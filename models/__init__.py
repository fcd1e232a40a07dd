"""Model recipes: each module builds a Keras model and its data (no downloads)."""
