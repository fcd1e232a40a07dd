"""Split learning: boards run the first layers, a TensorFlow cloud runs the rest."""
