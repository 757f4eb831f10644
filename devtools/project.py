"""Where the project is, what ``local/`` configures, and the environment of the Python processes
devtools, tests and benchmarks start."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
# How the tools report progress: one line at a time.
Log = Callable[[str], None]
# What a Python process of this project needs on PYTHONPATH (the Makefile exports the same).
SOURCE_ROOTS = (ROOT / "layers" / "wechat_core", ROOT / "simulator", ROOT)


def python_path(existing: str | None = None) -> str:
    """PYTHONPATH with the project's source roots first, then ``existing`` (without repeats)."""
    entries = [str(p) for p in SOURCE_ROOTS] + [p for p in (existing or "").split(os.pathsep) if p]
    return os.pathsep.join(dict.fromkeys(entries))


def child_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the project's PYTHONPATH, for a child
    Python process that imports the project's modules."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = python_path(env.get("PYTHONPATH"))
    return env


def local_parameters() -> dict[str, str]:
    """``local/env.json``: the functions' configuration for local runs."""
    data = json.loads((ROOT / "local/env.json").read_text("utf-8"))
    return {str(k): str(v) for k, v in data["Parameters"].items()}


def sample_platform() -> dict[str, str]:
    """``local/sample-platform.json``: the platform of WeChat's documented example."""
    data = json.loads((ROOT / "local/sample-platform.json").read_text("utf-8"))
    return {str(k): str(v) for k, v in data.items()}


def say(message: str) -> None:
    """The local stack's progress line (the default ``Log``)."""
    print(f"local: {message}", flush=True)
