"""Fuzzing the wire protocol: the atheris target (``harness``), its runner and its seed corpus."""
