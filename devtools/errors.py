"""What devtools raises when the local stack cannot be set up."""

from __future__ import annotations


class StackError(RuntimeError):
    """The local stack could not be started."""


class EngineUnavailable(StackError):
    """No container engine or Lambda base image could be set up on this machine."""
