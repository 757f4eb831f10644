"""The fixed values the sample events of events/ carry (``make events``), and that their setup steps
(tests/support/event_setups.py) make valid at the simulator and in the table before an invoke."""

from __future__ import annotations

import base64

SAMPLE_TICKET = "ticket@@@sample-ticket-for-local-runs"
SAMPLE_MINI_PROGRAM = "wx5a3e1c9b7d2f4e60"
SAMPLE_AUTHORIZATION_CODE = "queryauthcode@@@sample-authorization-for-local-runs"
SAMPLE_JS_CODE = "sample-jscode-for-local-runs-0001"
SAMPLE_STATE = "sample-state-for-local-runs-0001"  # of an authorization link we made
SAMPLE_SESSION_TOKEN = "sample-session-token-for-local-runs-0001"  # what login would have answered
SAMPLE_SESSION_KEY = base64.b64encode(b"sample-sessionky").decode()  # AES-128, as WeChat gives it
SAMPLE_OPENID = "oSampleOpenidForLocalRuns001"
