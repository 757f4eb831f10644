"""The release routes refuse bad input with a reason and create nothing (over HTTP, through the
loopback gateway in front of the real releases handler; the table and queue on moto)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from devtools.resources import Resources
from tests.support import release_queue
from tests.support.gateway import Gateway

pytestmark = pytest.mark.integration

APPID = "wx" + "a" * 16
GOOD: dict[str, Any] = {"template_id": 1, "user_version": "1.0.0", "user_desc": "first", "appids": [APPID]}


def post(gateway: Gateway, body: Any, **kwargs: Any) -> requests.Response:
    return requests.post(f"{gateway.url}/wechat/releases", json=body, timeout=10, **kwargs)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"template_id": "1"}, "template_id must be a whole number"),
        ({"template_id": -1}, "template_id must be a whole number"),
        ({"template_id": True}, "template_id must be a whole number"),
        ({"user_version": ""}, "user_version must be a string of 1 to 64 characters"),
        ({"user_version": "v" * 65}, "user_version must be a string of 1 to 64 characters"),
        ({"user_version": 1}, "user_version must be a string of 1 to 64 characters"),
        ({"user_desc": 5}, "user_desc must be a string of at most 1024 characters"),
        ({"ext_json": "{}"}, "ext_json must be a JSON object"),
        ({"ext_json": {"x": "y" * 40_000}}, "ext_json is over 32768 bytes"),
        ({"audit": []}, "audit must be a JSON object"),
        ({"auto_release": "yes"}, "auto_release must be true or false"),
        ({"appids": []}, "appids must be a non-empty list"),
        ({"appids": "wxaaaaaaaaaaaaaaaa"}, "appids must be a non-empty list"),
        ({"appids": [APPID, "wx123"]}, "appids must be wx + 16 characters each"),
        ({"appids": [APPID, 7]}, "appids must be wx + 16 characters each"),
        ({"appids": [APPID] * 5001}, "at most 5000 appids; use all: true for more"),
        ({"all": True}, "give appids or all, not both"),
        ({"all": "true", "appids": None}, "all must be true or false"),
        ({"domains": {"requestdomain": "https://a.com"}}, "domains: requestdomain must be a list of URLs"),
        ({"domains": {"mydomain": []}}, "domains: unknown kind mydomain"),
        ({"extra": 1}, "unknown field extra"),
    ],
)
def test_bad_releases_are_refused_and_create_nothing(
    gateway: Gateway, service: Resources, change: dict[str, Any], reason: str
) -> None:
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    before = service.snapshot()
    answer = post(gateway, body)
    assert (answer.status_code, answer.json()) == (400, {"error": reason})
    assert service.snapshot() == before
    assert release_queue.receive() == []


def test_neither_appids_nor_all_is_refused(gateway: Gateway, service: Resources) -> None:
    body = {k: v for k, v in GOOD.items() if k != "appids"}
    answer = post(gateway, body)
    assert (answer.status_code, answer.json()) == (
        400,
        {"error": "give appids (a list of Mini Program appids) or all: true"},
    )


def test_not_json_is_refused(gateway: Gateway, service: Resources) -> None:
    answer = requests.post(f"{gateway.url}/wechat/releases", data="appids=1", timeout=10)
    assert answer.status_code == 415
    answer = requests.post(
        f"{gateway.url}/wechat/releases", data="{", headers={"Content-Type": "application/json"}, timeout=10
    )
    assert (answer.status_code, answer.json()) == (400, {"error": "body is not valid JSON"})


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/wechat/releases/not-a-release", 400),
        ("/wechat/releases/1796000000-0000000g", 400),
        ("/wechat/releases/1796000000-00000000", 404),
        ("/wechat/releases/1796000000-00000000?limit=0", 400),
        ("/wechat/releases?limit=x", 400),
        ("/wechat/releases?next=nope", 400),
    ],
)
def test_bad_reads_are_refused(gateway: Gateway, service: Resources, path: str, status: int) -> None:
    answer = requests.get(f"{gateway.url}{path}", timeout=10)
    assert answer.status_code == status, answer.text
    assert "error" in answer.json()


def test_a_good_release_is_accepted_and_queues_its_fan_out(gateway: Gateway, service: Resources) -> None:
    answer = post(gateway, GOOD)
    assert answer.status_code == 202, answer.text
    release_id = answer.json()["release_id"]
    assert release_queue.pending() == [{"release_id": release_id, "step": "fanout"}]
    status = requests.get(f"{gateway.url}/wechat/releases/{release_id}", timeout=10).json()
    assert status["release"]["user_version"] == "1.0.0"
    assert status["total"] == 0
    listed = requests.get(f"{gateway.url}/wechat/releases", timeout=10).json()
    assert [r["release_id"] for r in listed["releases"]] == [release_id]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"draft_id": "3"}, "draft_id must be a whole number"),
        ({"draft_id": 3, "template_type": 2}, "template_type must be 0 (ordinary) or 1 (standard)"),
        ({"draft_id": 3, "x": 1}, "unknown field x"),
    ],
)
def test_bad_template_requests_are_refused(
    gateway: Gateway, service: Resources, body: Any, reason: str
) -> None:
    answer = requests.post(f"{gateway.url}/wechat/templates", json=body, timeout=10)
    assert (answer.status_code, answer.json()) == (400, {"error": reason})
    deleted = requests.delete(f"{gateway.url}/wechat/templates/abc", timeout=10)
    assert (deleted.status_code, deleted.json()) == (400, {"error": "template_id must be a whole number"})
