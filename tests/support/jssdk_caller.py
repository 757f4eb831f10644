"""One "Lambda" asking for a JS-SDK configuration, in a process of its own.

Run as ``python -m tests.support.jssdk_caller <appid> <page url>`` with the service's environment.
It loads the real H5 handler, prints ``READY``, waits for a line on stdin (so every caller asks at
once), calls the handler once and prints ``ANSWER {"status", "body"}`` (the handler's own log and
metric lines go to stdout too).
"""

from __future__ import annotations

import json
import sys

from devtools.events import LambdaContext, rest_event
from tests.support.lambdas import load_function


def main() -> None:
    appid, page = sys.argv[1], sys.argv[2]
    module = load_function("functions/h5")
    path = f"/wechat/jssdk/{appid}/config"
    event = rest_event(
        "GET",
        path,
        resource="/wechat/jssdk/{appid}/config",
        path_parameters={"appid": appid},
        query={"url": page},
    )
    print("READY", flush=True)
    sys.stdin.readline()
    response = module.lambda_handler(event, LambdaContext(function_name="H5Function"))
    print(
        "ANSWER " + json.dumps({"status": response["statusCode"], "body": json.loads(response["body"])}),
        flush=True,
    )


if __name__ == "__main__":
    main()
