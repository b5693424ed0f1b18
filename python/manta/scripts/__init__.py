"""Command-line tools of manta (the ``manta`` command)."""
