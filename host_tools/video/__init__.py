"""PASS video: generated clips, self-supervised gate training, the bit-exact gate reference, streaming."""
