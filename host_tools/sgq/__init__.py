"""SGQ, the stripe-wise group quantization codec for split-learning features and gradients."""
