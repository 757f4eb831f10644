"""The one clock every module reads, so tests can set time instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable

_source: Callable[[], float] = time.time


def now() -> float:
    """Seconds since the epoch, from the current source."""
    return _source()


def set_source(source: Callable[[], float] | None) -> None:
    """Replace the clock (tests); ``None`` restores the wall clock."""
    global _source  # noqa: PLW0603 - one process-wide clock is the point of this module
    _source = source if source is not None else time.time
