"""Time of the push path: parse the envelope, check msg_signature, decrypt, parse the push.

Prints microseconds per push for each stage and the whole path, and the whole path as a
fraction of WeChat's 5-second answer budget. Run: `make bench` (it sets PYTHONPATH).
"""

from __future__ import annotations

import statistics
import timeit

from wechat_core.protocol.crypto import MessageCrypto
from wechat_core.protocol.messages import build_xml, parse_component_event, parse_envelope

APPID = "wx134c8103faa5a59e"
crypto = MessageCrypto("AAAAA", "A" * 43, APPID)
plaintext = build_xml(
    {
        "AppId": APPID,
        "CreateTime": 1763856000,
        "InfoType": "component_verify_ticket",
        "ComponentVerifyTicket": "ticket@@@" + "x" * 86,
    }
)
encrypt = crypto.encrypt(plaintext)
body = build_xml({"AppId": APPID, "Encrypt": encrypt}).encode()
ts, nonce = "1763856000", "1590219412"
signature = crypto.signature(ts, nonce, encrypt)


def envelope() -> None:
    parse_envelope(body)


def verify() -> None:
    crypto.check_msg_signature(signature, ts, nonce, encrypt)


def decrypt() -> None:
    crypto.decrypt(encrypt)


def parse_push() -> None:
    parse_component_event(plaintext)


def whole() -> None:
    env = parse_envelope(body)
    crypto.check_msg_signature(signature, ts, nonce, env.encrypt)
    parse_component_event(crypto.decrypt(env.encrypt))


def per_call_us(fn: object, number: int = 5000, repeat: int = 7) -> float:
    times = timeit.repeat(fn, number=number, repeat=repeat)  # type: ignore[arg-type]
    return statistics.median(times) / number * 1e6


def main() -> None:
    stages = {
        "parse envelope": envelope,
        "check msg_signature": verify,
        "AES decrypt": decrypt,
        "parse push XML": parse_push,
        "whole push path": whole,
    }
    results = {name: per_call_us(fn) for name, fn in stages.items()}
    total = results["whole push path"]
    print(f"push path, {len(body)}-byte body, median of 7 runs x 5000 calls:")
    for name, us in results.items():
        print(f"  {name:22s} {us:8.1f} us/push   {us / total:6.1%} of whole")
    print(f"  whole path / WeChat's 5 s budget: {total / 5e6:.2e}")
    print(f"  pushes per second on one core: {1e6 / total:,.0f}")


if __name__ == "__main__":
    main()
