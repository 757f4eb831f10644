"""Sample events of events/ for Mini Program releases (README "Mini Program releases"): the IAM routes
of ``ReleasesFunction`` (the template library, creating a release, a release's state) and the two
events ``ReleaseWorkerFunction`` gets, a batch from the release queue (as Lambda's SQS event source
builds it) and its hourly schedule. Part of ``make events`` (devtools/make_events.py), with the same
expectation format.

The worker's sample batch holds the ``commit`` message of the sample release (devtools.samples) for
the sample Mini Program; the ``release`` setup step stores that release, with the sample template of
the simulator's library, and the account queued. Both functions send to the release queue
(``RELEASE_QUEUE_URL``), which the checks afterwards read.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from devtools.events import LOCAL_API_HEADERS, error_expectation, rest_event
from devtools.release_poller import sqs_event
from devtools.samples import (
    SAMPLE_MINI_PROGRAM,
    SAMPLE_RELEASE_ID,
    SAMPLE_RELEASE_MESSAGE_ID,
    SAMPLE_TEMPLATE_DESC,
    SAMPLE_TEMPLATE_VERSION,
    SIGNED_AT,
    UNKNOWN_RELEASE_ID,
)

TEMPLATES = "/wechat/templates"
RELEASES = "/wechat/releases"
RELEASE = "/wechat/releases/{release_id}"
JSON = LOCAL_API_HEADERS | {"Content-Type": "application/json"}
RELEASE_ID = r"[0-9]{10}-[0-9a-f]{8}"
# A queue as CloudFormation names it (the deployed stack's ReleaseQueue): the records' eventSourceARN.
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/wechat-component-ReleaseQueue-5A3E1C9B7D2F"


def _create(body: dict[str, Any]) -> dict[str, Any]:
    return rest_event("POST", RELEASES, body=json.dumps(body), headers=JSON)


def _batch(*messages: dict[str, Any]) -> dict[str, Any]:
    """The event of one batch from the release queue, each body as the service sends it (compact,
    sorted keys: wechat_core.work_queue)."""
    received = []
    for n, message in enumerate(messages):
        body = json.dumps(message, separators=(",", ":"), sort_keys=True)
        sent = str(SIGNED_AT * 1000)
        received.append(
            {
                "MessageId": SAMPLE_RELEASE_MESSAGE_ID[:-1] + str(n + 1),
                "ReceiptHandle": f"sample-receipt-handle-{n + 1}",
                "Body": body,
                "MD5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "Attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": sent,
                    "SenderId": "AROAEXAMPLESENDER:wechat-component-ReleasesFunction",
                    "ApproximateFirstReceiveTimestamp": sent,
                },
            }
        )
    return sqs_event(received, QUEUE_URL)


def _scheduled() -> dict[str, Any]:
    """What EventBridge Scheduler sends the worker every hour (template.yaml's AuditCheck)."""
    return {
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000001",
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": "123456789012",
        "time": "2025-11-23T00:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/wechat-release-audit-check"],
        "detail": {},
    }


# name -> (function, event, expectation), as make_events.EVENTS
RELEASE_EVENTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    # --- ReleasesFunction (IAM): the template library and releases ----------------------------------
    "templates-list.json": (
        "ReleasesFunction",
        rest_event("GET", TEMPLATES, headers=LOCAL_API_HEADERS),
        {
            # The library as WeChat lists it (gettemplatelist, with the component token): the sample
            # template among whatever else it holds.
            "setup": ["ticket", "template"],
            "expect": {"statusCode": 200},
            "body_keys": ["templates"],
            "body_includes": {
                "templates": [
                    {
                        "user_version": SAMPLE_TEMPLATE_VERSION,
                        "user_desc": SAMPLE_TEMPLATE_DESC,
                        "template_type": 0,
                    }
                ]
            },
        },
    ),
    "releases-create.json": (
        "ReleasesFunction",
        _create(
            {
                "template_id": 1,
                "user_version": SAMPLE_TEMPLATE_VERSION,
                "user_desc": SAMPLE_TEMPLATE_DESC,
                "appids": [SAMPLE_MINI_PROGRAM],
            }
        ),
        {
            # Accepted: stored, and its fan-out queued for the worker (which checks the accounts).
            "expect": {"statusCode": 202},
            "headers": {"Content-Type": "application/json"},
            "body_keys": ["release_id"],
            "body_match": {"release_id": RELEASE_ID},
            "then": ["release_fanout_queued"],
        },
    ),
    "releases-create-bad.json": (
        "ReleasesFunction",
        _create({"template_id": 1, "user_version": SAMPLE_TEMPLATE_VERSION}),
        error_expectation(400, "give appids (a list of Mini Program appids) or all: true")
        | {"then": ["table_empty", "nothing_queued"]},
    ),
    "releases-status-unknown.json": (
        "ReleasesFunction",
        rest_event(
            "GET",
            RELEASE.replace("{release_id}", UNKNOWN_RELEASE_ID),
            resource=RELEASE,
            path_parameters={"release_id": UNKNOWN_RELEASE_ID},
            headers=LOCAL_API_HEADERS,
        ),
        error_expectation(404, "no such release") | {"then": ["table_empty"]},
    ),
    # --- ReleaseWorkerFunction: a batch from the release queue, the hourly schedule -----------------
    "release-worker-batch.json": (
        "ReleaseWorkerFunction",
        _batch({"step": "commit", "release_id": SAMPLE_RELEASE_ID, "appid": SAMPLE_MINI_PROGRAM}),
        {
            # The sample Mini Program's commit of the sample template (wxa/commit, its extAppid in
            # ext_json): the account committed and its submit message queued; nothing failed.
            "setup": ["ticket", "authorization", "release"],
            "expect": {"batchItemFailures": []},
            "then": ["release_account_committed"],
        },
    ),
    "release-worker-schedule.json": (
        "ReleaseWorkerFunction",
        _scheduled(),
        {"expect": {"audit_checks_queued": 0}, "then": ["nothing_queued"]},
    ),
}
