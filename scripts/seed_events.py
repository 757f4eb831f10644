"""Make sample events of events/ valid against the running local stack (`make local`).

Some events need state first: a ticket WeChat accepts, an authorized Mini Program, a fresh
wx.login code, a `state` we issued, a login session, or no ticket at all. This runs the setup steps
events/expected.json names for each file (the same steps the tests run,
tests/support/event_setups.py) against the stack's simulator and table: the sample pushes go
through ``sam local invoke`` of the real function; what no function makes with a chosen value (a
state, a session) is written to the table through wechat_core, as the service writes it.

    PYTHONPATH=... .venv/bin/python scripts/seed_events.py events/login.json   # see README
    .venv/bin/sam local invoke JsCode2SessionFunction -e events/login.json --config-file .local/samconfig.toml
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from devtools.project import ROOT
from devtools.stack_info import DEFAULT_WORK_DIR, STATE_FILE, StackInfo
from tests.support.event_setups import prepare, service_context, service_environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("events", type=Path, nargs="+", help="files of events/")
    args = parser.parse_args(argv)
    expected: dict[str, dict[str, Any]] = json.loads((ROOT / "events/expected.json").read_text("utf-8"))
    unknown = [e.name for e in args.events if e.name not in expected]
    if unknown:
        print(f"not in events/expected.json: {', '.join(unknown)}", file=sys.stderr)
        return 2
    try:
        info = StackInfo.load(DEFAULT_WORK_DIR / STATE_FILE)
    except (OSError, ValueError, TypeError):
        info = None
    if info is None or not info.running():
        print("The local stack is not running: start `make local` in another terminal.", file=sys.stderr)
        return 2
    stack = info

    def invoke(file: str) -> dict[str, Any]:
        print(f"  sam local invoke {expected[file]['function']} -e events/{file}", flush=True)
        return stack.invoke(expected[file]["function"], ROOT / "events" / file)

    environment = service_environment(
        moto_url=stack.moto_url,
        simulator_url=stack.simulator_url,
        table_name=stack.table_name,
        component_appid=stack.component_appid,
        secret_name=stack.secret_name,
    )
    for event in args.events:
        spec = expected[event.name]
        steps = spec.get("setup", [])
        print(f"{event.name}: {', '.join(steps) or 'needs no setup'}", flush=True)
        with service_context(environment):
            prepare(steps, stack.simulator_url, invoke)
        config = Path(stack.samconfig)
        shown = config.relative_to(ROOT) if config.is_relative_to(ROOT) else config
        print(f"ready: sam local invoke {spec['function']} -e events/{event.name} --config-file {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
