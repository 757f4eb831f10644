"""``python -m wechat_simulator``: run the simulator in the foreground."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from types import FrameType

from wechat_simulator.records import Platform
from wechat_simulator.server import Simulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wechat_simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--callback-url", help="authorization-event URL to push tickets and events to")
    parser.add_argument(
        "--message-url",
        help="authorizers' message URL ($APPID$ replaced; default: the callback URL with "
        "/wechat/component/events replaced by /wechat/authorizers/$APPID$/messages)",
    )
    parser.add_argument(
        "--oauth-domain",
        action="append",
        default=[],
        help="a web-authorization domain (网页授权域名) web-OAuth redirect_uri may use; repeat for "
        "more (default: any host)",
    )
    parser.add_argument(
        "--push-interval", type=float, default=0, help="seconds between ticket pushes (0: off)"
    )
    parser.add_argument("--latency-ms", type=float, default=0, help="added to every API answer")
    parser.add_argument(
        "--platform-json", help='file with {"appid", "appsecret", "token", "encoding_aes_key"}'
    )
    args = parser.parse_args(argv)

    platform = Platform.generate()
    if args.platform_json:
        with open(args.platform_json, encoding="utf-8") as f:
            platform = Platform(**json.load(f))
    sim = Simulator(
        platform,
        callback_url=args.callback_url,
        message_url=args.message_url,
        oauth_domains=args.oauth_domain,
        host=args.host,
        port=args.port,
        latency=args.latency_ms / 1000,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"WeChat simulator on {sim.url} for component {platform.appid}", flush=True)
    if args.callback_url and args.push_interval > 0:
        sim.push_tickets_every(args.push_interval)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        sim.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
