"""Regenerate events/: API Gateway events for `sam local invoke`, signed with the documented sample key.

The sample platform (local/sample-platform.json) is the one in WeChat's own worked example:
token "AAAAA", EncodingAESKey of 43 "A", component appid wx134c8103faa5a59e
(https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/Before_Develop/message_push.html).
Events are signed at a fixed time, so regenerating them gives the same files; local runs accept
them through a wide timestamp window (local/env.json), deployments keep the 300-second default.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers/wechat_core"), str(ROOT / "simulator")]

from wechat_core.crypto import MessageCrypto  # noqa: E402
from wechat_core.messages import build_xml  # noqa: E402

from tests.support.lambdas import rest_event  # noqa: E402

SIGNED_AT = 1763856000  # 2025-11-23T00:00:00Z
NONCE = "1590219412"
# Fixed random prefix so the ciphertext, and so the files, are reproducible.
RANDOM16 = b"sample-events-16"


def platform() -> dict[str, str]:
    data: dict[str, str] = json.loads((ROOT / "local/sample-platform.json").read_text("utf-8"))
    return data


def _push(plaintext: str, *, signature_ok: bool = True) -> dict[str, Any]:
    p = platform()
    crypto = MessageCrypto(p["token"], p["encoding_aes_key"], p["appid"])
    encrypt = crypto.encrypt(plaintext, random16=RANDOM16)
    body = build_xml({"AppId": p["appid"], "Encrypt": encrypt})
    signature = crypto.signature(str(SIGNED_AT), NONCE, encrypt)
    if not signature_ok:
        signature = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    query = {"timestamp": str(SIGNED_AT), "nonce": NONCE, "encrypt_type": "aes", "msg_signature": signature}
    return rest_event(
        "POST", "/wechat/component/events", query=query, body=body, headers={"Content-Type": "text/xml"}
    )


def _ticket_xml() -> str:
    return build_xml(
        {
            "AppId": platform()["appid"],
            "CreateTime": SIGNED_AT,
            "InfoType": "component_verify_ticket",
            "ComponentVerifyTicket": "ticket@@@sample-ticket-for-local-runs",
        }
    )


# name -> (function logical id, event, the answer `sam local invoke` must give)
EVENTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "callback-ticket-push.json": (
        "CallbackFunction",
        _push(_ticket_xml()),
        {"statusCode": 200, "body": "success"},
    ),
    "callback-bad-signature.json": (
        "CallbackFunction",
        _push(_ticket_xml(), signature_ok=False),
        {"statusCode": 401, "body": '{"error":"signature mismatch"}'},
    ),
}


def stable(event: dict[str, Any]) -> dict[str, Any]:
    """Drop the per-run request ids so regenerated files are identical."""
    event = json.loads(json.dumps(event))
    event["requestContext"]["requestId"] = "sample-request"
    return event


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "events")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    expectations = {}
    for name, (function, event, expected) in EVENTS.items():
        (args.out / name).write_text(json.dumps(stable(event), indent=2, ensure_ascii=False) + "\n", "utf-8")
        expectations[name] = {"function": function, "expect": expected}
    (args.out / "expected.json").write_text(json.dumps(expectations, indent=2) + "\n", "utf-8")
    print(f"wrote {len(EVENTS)} events to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
