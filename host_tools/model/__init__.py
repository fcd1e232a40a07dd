"""A converted model folder as the host sees it: reports, benchmarks on a board."""
