"""Make a sample event of events/ valid against the running local stack (`make local`).

Some events need state first: a ticket WeChat accepts, an authorized Mini Program, a fresh
wx.login code. This runs the setup steps events/expected.json names for a file (the same steps the
tests run, tests/support/event_setups.py), invoking the real functions with ``sam local invoke``:

    .venv/bin/python scripts/seed_events.py events/login.json
    .venv/bin/sam local invoke JsCode2SessionFunction -e events/login.json --config-file .local/samconfig.toml
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers/wechat_core"), str(ROOT / "simulator")]

from scripts.local_stack import DEFAULT_WORK_DIR, STATE_FILE, StackInfo  # noqa: E402
from tests.support.event_setups import prepare  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("event", type=Path, help="a file of events/")
    args = parser.parse_args(argv)
    expected: dict[str, dict[str, Any]] = json.loads((ROOT / "events/expected.json").read_text("utf-8"))
    spec = expected.get(args.event.name)
    if spec is None:
        print(f"{args.event.name} is not in events/expected.json", file=sys.stderr)
        return 2
    try:
        info = StackInfo.load(DEFAULT_WORK_DIR / STATE_FILE)
    except (OSError, ValueError, TypeError):
        info = None
    if info is None or not info.running():
        print("The local stack is not running: start `make local` in another terminal.", file=sys.stderr)
        return 2
    steps = spec.get("setup", [])

    def invoke(file: str) -> dict[str, Any]:
        print(f"  sam local invoke {expected[file]['function']} -e events/{file}", flush=True)
        return info.invoke(expected[file]["function"], ROOT / "events" / file)

    print(f"{args.event.name}: {', '.join(steps) or 'needs no setup'}")
    prepare(steps, info.simulator_url, invoke)
    command = f"sam local invoke {spec['function']} -e events/{args.event.name}"
    print(f"ready: {command} --config-file {info.samconfig}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
