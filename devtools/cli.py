"""``make local``: start the local stack (devtools.local_stack), print where everything is, follow
the functions' and the simulator's logs; Ctrl-C (or SIGTERM) stops it all.

    python -m devtools            # what `make local` runs
    python -m devtools --help
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import IO

from devtools.children import Child
from devtools.errors import StackError
from devtools.events import MESSAGES_ROUTE
from devtools.local_stack import LocalStack
from devtools.project import ROOT, say
from devtools.resources import RELEASE_MAX_RECEIVES
from devtools.stack_info import DEFAULT_WORK_DIR, STATE_FILE, StackInfo
from devtools.template import api_routes, has_route, scheduled_functions


def _h5_allow_list(info: StackInfo) -> str:
    """The functions' H5_ALLOW_LIST in this stack (local/env.json's, through its sam-env.json)."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return str(json.loads(Path(info.env_file).read_text("utf-8"))["Parameters"].get("H5_ALLOW_LIST", ""))
    return ""


def _release_worker(info: StackInfo) -> str:
    """The banner's lines on the release worker and its queue (none when the stack runs no worker)."""
    if not info.lambda_url:
        return ""
    return f"""
 Mini Program releases:  {_route(info, "POST", "/wechat/releases")}
    ReleaseWorkerFunction in its warm container: sam local start-lambda on {info.lambda_url}
    fed by devtools/release_poller.py as Lambda's SQS event source would (batches of 10, deletes
    what the worker does not report in batchItemFailures; log: .local/logs/worker.log)
    release queue:      {info.release_queue_url}
    dead-letter queue:  {info.release_dlq_url}   (after {RELEASE_MAX_RECEIVES} receives)
    a release's state:  curl {info.api_url}/wechat/releases/<release_id>
"""


def _route(info: StackInfo, method: str, path: str, url: str = "") -> str:
    url = url or info.api_url + path
    return url if has_route(method, path) else f"{url}  (not in template.yaml yet)"


def banner(info: StackInfo, seconds: float) -> str:
    appid = info.component_appid
    rel_config = os.path.relpath(info.samconfig, ROOT)

    def route(method: str, path: str, url: str = "") -> str:
        return _route(info, method, path, url)

    routes = "\n".join(
        f"    {method:6} {info.url(path)}   -> {name}" for method, path, name, _ in sorted(api_routes())
    )
    schedules = ", ".join(scheduled_functions()) or "none yet"
    return f"""
================================================================================================
 Local stack ready in {seconds:.1f}s  (component appid {appid})

 Authorization event URL (callback):  {info.callback_url}
 Message URL ($APPID$ = the account): {route("POST", MESSAGES_ROUTE, info.message_url)}
 Authorization link:                  {route("GET", "/wechat/component/authorize")}
 Mini Program login:                  {route("POST", "/wechat/miniprogram/{appid}/login")}
 H5 web OAuth (an Official Account):  {route("GET", "/wechat/oauth/{appid}/authorize")}
    for the pages of H5_ALLOW_LIST:   {_h5_allow_list(info) or "none (local/env.json)"}
 Every route in template.yaml:
{routes}
 Scheduled functions (invoke with sam local invoke): {schedules}

 WeChat simulator:  {info.simulator_url}
    pushes a ticket now:     curl -X POST {info.simulator_url}/__sim/push/ticket
    a fan writes to an authorized account (the message goes to the message URL):
                             curl -X POST {info.simulator_url}/__sim/messages -d \\
                               '{{"appid": "wx…", "msg_type": "text", "fields": {{"Content": "hello"}}}}'
    full-network test:       curl -X POST {info.simulator_url}/__sim/full-network-test
    upstream API calls:      {info.simulator_url}/__sim/calls
    requests it received:    {info.simulator_url}/__sim/requests
    the platform it plays:   {info.simulator_url}/__sim/platform
 moto (DynamoDB, Secrets Manager, EventBridge, SQS): {info.moto_url}   (dashboard: {info.moto_url}/moto-api/)
    table {info.table_name}, secret {info.secret_name}
    event bus {info.bus_name}; everything published on it goes to the queue
    {info.queue_url}
{_release_worker(info)}
 In another terminal:
    make demo
    export "$(scripts/container-engine.sh | tail -n 1)"
    .venv/bin/sam local invoke CallbackFunction -e events/callback-ticket-push.json --config-file {rel_config}

 Ctrl-C stops everything started here.
================================================================================================
"""


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


class _Follower:
    """Prints what the children write to their logs, prefixed with their names."""

    def __init__(self, children: dict[str, Child]) -> None:
        self.files: list[tuple[str, IO[str]]] = []
        for key, child in children.items():
            if key == "moto":  # one line per AWS call: noise here, kept in its log file
                continue
            handle = open(child.log_path, encoding="utf-8", errors="replace")  # noqa: SIM115
            handle.seek(0, os.SEEK_END)
            self.files.append((key, handle))

    def pump(self) -> None:
        for key, handle in self.files:
            for line in handle.readlines():
                if '"GET /__sim/' in line:  # someone looking at the simulator (make demo): noise here
                    continue
                print(f"{key:>9} | {line.rstrip()}", flush=True)

    def close(self) -> None:
        for _, handle in self.files:
            handle.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools",
        description="Run the service locally (sam local start-api, moto, WeChat simulator).",
    )
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("LOCAL_API_PORT", "3000")))
    parser.add_argument("--simulator-port", type=int, default=int(os.environ.get("LOCAL_SIM_PORT", "8790")))
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("LOCAL_MOTO_PORT", "5000")))
    parser.add_argument(
        "--lambda-port",
        type=int,
        default=int(os.environ.get("LOCAL_LAMBDA_PORT", "3001")),
        help="sam local start-lambda, serving the release worker",
    )
    parser.add_argument(
        "--push-interval",
        type=float,
        default=float(os.environ.get("LOCAL_PUSH_INTERVAL", "600")),
        help="seconds between the simulator's ticket pushes (WeChat: 600)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not follow the logs once ready")
    args = parser.parse_args(argv)

    started = time.monotonic()
    with contextlib.suppress(OSError, ValueError, TypeError):
        running = StackInfo.load(DEFAULT_WORK_DIR / STATE_FILE)
        if running.running():
            say(f"a local stack already runs here (pid {running.pid}, {running.api_url}); stop it first")
            return 1
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGHUP, _raise_stop)
    stack = LocalStack(
        api_port=args.api_port,
        simulator_port=args.simulator_port,
        moto_port=args.moto_port,
        lambda_port=args.lambda_port,
        push_interval=args.push_interval,
        verbose=True,
    )
    code = 0
    follower: _Follower | None = None
    try:
        info = stack.start()
        print(banner(info, time.monotonic() - started), flush=True)
        follower = _Follower(stack.children)
        while True:
            if not args.quiet:
                follower.pump()
            for child in stack.children.values():
                if child.exited():
                    raise StackError(f"{child.name} stopped unexpectedly; its log:\n{child.tail()}")
            time.sleep(0.5)
    except (KeyboardInterrupt, _Stop):
        print("", flush=True)
    except StackError as exc:
        print(f"local: error: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        # Finish the clean-up even if Ctrl-C is pressed again.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if follower is not None:
            follower.pump()
            follower.close()
        stack.stop()
        say("stopped; nothing left running (the container engine service stays up)")
    return code
