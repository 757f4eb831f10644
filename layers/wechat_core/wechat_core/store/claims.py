"""What writing a delivery key found (``store.deliveries``); apart, so features can name the outcomes
without importing boto3 at a handler's cold start."""

from __future__ import annotations

import enum


class Claim(enum.Enum):
    FIRST = "first"  # the key was free: process the delivery
    REPEAT = "repeat"  # the same delivery again (same fingerprint)
    CONFLICT = "conflict"  # another delivery under the same key
