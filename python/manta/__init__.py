"""manta: a distributed task and actor runtime with Ray's Python API."""
