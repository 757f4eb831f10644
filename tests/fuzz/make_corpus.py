"""Write the seed corpus (``tests/fuzz/corpus/``) with the simulator's encoder.

    python -m tests.fuzz.make_corpus

Each seed is a push as the simulator makes it for the harness's platform (its ``build_fields``
and plaintexts, ``pusher.envelope`` and ``pusher.signed_query``), written in the bytes the
harness reads back (``SeedWriter``). The file name starts with the harness path the seed takes;
``tests/unit/test_fuzz_protocol.py`` checks that every seed is accepted on that path. Files named
``regression-*`` are the fuzzer's findings (kept, not rewritten here). Nonces,
random prefixes and ids are random: running this again changes the files, not what they cover.
"""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechat_core.protocol.messages import build_xml
from wechat_simulator import Platform, SimState
from wechat_simulator.messages import EVENT_FIELDS, MESSAGE_FIELDS, build_fields
from wechat_simulator.pusher import (
    authorization_event_xml,
    envelope,
    signed_query,
    ticket_xml,
    unauthorized_xml,
)

from tests.fuzz import harness
from tests.fuzz.harness import DECRYPT, DELIVERY, ENVELOPE, MAX_BODY, MESSAGE, MODES, NOW, SeedWriter

SEEDS = Path(__file__).resolve().parent / "corpus"
ACCOUNT = "gh_3c884a361561"
OPENID = "ozy4qt5QUADNXORxCVipKMV9dss0"


def simulator(token: str = harness.TOKEN, key: str = harness.ENCODING_AES_KEY) -> SimState:
    platform = Platform(appid=harness.APPID, appsecret="0" * 32, token=token, encoding_aes_key=key)
    return SimState(platform=platform)


def component_plaintexts(state: SimState) -> dict[str, str]:
    appid = "wx570bc396a51b8ff8"
    return {
        "ticket": ticket_xml(state, "ticket@@@" + "x" * 60, NOW),
        "authorized": authorization_event_xml(
            state,
            "authorized",
            appid,
            "queryauthcode@@@abc",
            create_time=NOW,
            expired_time=NOW + 3600,
            pre_auth_code="preauthcode@@@x",
        ),
        "unauthorized": unauthorized_xml(state, appid, NOW),
        "fastregister": build_xml(
            {
                "AppId": harness.APPID,
                "CreateTime": NOW,
                "InfoType": "notify_third_fasteregister",
                "appid": "wxnew0000000000001",
                "status": 0,
                "auth_code": "code1",
                "msg": "OK",
            }
        ),
    }


def account_plaintexts() -> dict[str, str]:
    """One of each message type and event the simulator sends, with the text WeChat would."""
    plaintexts = {}
    for msg_type in MESSAGE_FIELDS:
        fields = build_fields(ACCOUNT, OPENID, NOW, msg_type=msg_type, event=None, overrides={})
        plaintexts[msg_type] = build_xml(fields)
    for event in EVENT_FIELDS:
        fields = build_fields(ACCOUNT, OPENID, NOW, msg_type="event", event=event, overrides={})
        plaintexts[f"event-{event}"] = build_xml(fields)
    text = build_fields(
        ACCOUNT, OPENID, NOW, msg_type="text", event=None, overrides={"Content": "你好 ]]> <&> 🎉\r\nend"}
    )
    plaintexts["text-special"] = build_xml(text)
    return plaintexts


def delivery_seed(
    state: SimState, plaintext: str, to_user_name: str | None, *, ours: bool, rotation: int | None = None
) -> bytes:
    """A push signed a few seconds ago (WeChat's clock is not ours): with the simulator's own
    msg_signature, checked by ours, or (``ours``) signed by the harness whatever the fuzzer changes;
    opened with the current keys, or during a key rotation."""
    encrypt, body = envelope(state, plaintext, to_user_name)
    query = signed_query(state, encrypt, NOW - 7)
    w = SeedWriter()
    w.choice(MODES, DELIVERY)
    w.text(16, query["timestamp"])
    w.text(72, query["nonce"])
    if ours:
        w.choice(4, 1)
    else:
        w.choice(4, 0)
        w.text(48, query["msg_signature"])
    w.flag(True)
    w.pick(("aes",), query["encrypt_type"])
    w.choice(len(harness.TOLERANCES), 0)
    w.choice(len(harness.ROTATIONS), rotation if rotation is not None else int(ours))
    w.choice(4, 0)  # the body as it is
    w.rest(body.encode())
    return w.data()


def raw_plaintext(state: SimState, plaintext: str) -> bytes:
    """The simulator's ciphertext decrypted (no unpadding): random, length, message, appid, pad."""
    encrypt, _ = envelope(state, plaintext)
    key = base64.b64decode(harness.ENCODING_AES_KEY + "=")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    return decryptor.update(base64.b64decode(encrypt))


def decrypt_seed(how: int, raw: bytes, to_user_name: str | None) -> bytes:
    w = SeedWriter()
    w.choice(MODES, DECRYPT)
    w.choice(len(harness.ROTATIONS), 0)  # the current keys only
    w.choice(3, how)
    w.blob(MAX_BODY, raw)
    w.flag(to_user_name is not None)
    if to_user_name is not None:
        w.text(32, to_user_name)
    return w.data()


def message_seed(plaintext: str) -> bytes:
    w = SeedWriter()
    w.choice(MODES, MESSAGE)
    w.choice(4, 0)  # the plaintext as it is
    w.rest(plaintext.encode())
    return w.data()


def envelope_seed(body: str) -> bytes:
    w = SeedWriter()
    w.choice(MODES, ENVELOPE)
    w.flag(False)  # bytes
    w.choice(4, 0)  # as they are
    w.rest(body.encode())
    return w.data()


def seeds() -> dict[str, bytes]:
    state = simulator()
    component, account = component_plaintexts(state), account_plaintexts()
    out: dict[str, bytes] = {}
    for name, plaintext in component.items():
        out[f"delivery-component-{name}"] = delivery_seed(state, plaintext, None, ours=False)
    for name in ("text", "text-special", "image", "event-subscribe", "event-weapp_audit_fail"):
        out[f"delivery-account-{name}"] = delivery_seed(state, account[name], ACCOUNT, ours=True)
    for name, plaintext in account.items():
        out[f"message-{name}"] = message_seed(plaintext)
    for name in ("ticket", "fastregister"):
        out[f"message-component-{name}"] = message_seed(component[name])
    # WeChat re-sending an earlier message under the keys the operator has just replaced.
    old = simulator(harness.PREVIOUS_TOKEN, harness.PREVIOUS_KEY)
    out["delivery-rotation-previous-keys"] = delivery_seed(
        old, account["text"], ACCOUNT, ours=False, rotation=1
    )
    old = simulator(harness.TOKEN, harness.PREVIOUS_KEY)
    out["delivery-rotation-previous-key-only"] = delivery_seed(
        old, account["text"], ACCOUNT, ours=False, rotation=2
    )
    text = account["text-special"]
    out["decrypt-ciphertext-text"] = decrypt_seed(1, base64.b64decode(envelope(state, text)[0]), ACCOUNT)
    out["decrypt-layout-text"] = decrypt_seed(2, raw_plaintext(state, text), ACCOUNT)
    out["decrypt-layout-ticket"] = decrypt_seed(2, raw_plaintext(state, component["ticket"]), None)
    out["envelope-component"] = envelope_seed(envelope(state, component["ticket"])[1])
    out["envelope-account"] = envelope_seed(envelope(state, account["text"], ACCOUNT)[1])
    return out


def main() -> None:
    SEEDS.mkdir(exist_ok=True)
    for old in SEEDS.iterdir():
        if not old.name.startswith("regression-"):  # findings stay
            old.unlink()
    for name, data in seeds().items():
        (SEEDS / name).write_bytes(data)


if __name__ == "__main__":
    main()
