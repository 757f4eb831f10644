"""A refresher that takes the lease and then hangs mid-refresh, until the test kills it.

Run as ``python -m tests.support.lease_holder component|authorizer:<appid>[:fetch]`` with the
service's environment. It prints ``LEASED`` once it holds the lease (with ``:fetch``, once WeChat
has also answered, so a rotated refresh token exists only in this process), then blocks on stdin.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from wechat_core.features.tokens import AuthorizerToken, ComponentToken, Fetched, LeasedToken


def start(target: str) -> subprocess.Popen[str]:
    """Run a holder for ``target`` in its own process, with this process's environment."""
    from devtools.project import ROOT, child_environment

    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.lease_holder", target],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_environment(),
    )


def main() -> None:
    fetch_first = sys.argv[1].endswith(":fetch")
    target = sys.argv[1].removesuffix(":fetch")
    token: LeasedToken = (
        ComponentToken() if target == "component" else AuthorizerToken(target.removeprefix("authorizer:"))
    )
    real_fetch = token.fetch

    def hang(item: dict[str, Any]) -> Fetched:
        if fetch_first:
            real_fetch(item)
        print("LEASED", flush=True)
        sys.stdin.read()  # blocks until killed
        raise SystemExit(1)

    token.fetch = hang  # type: ignore[method-assign]
    token.get()


if __name__ == "__main__":
    main()
