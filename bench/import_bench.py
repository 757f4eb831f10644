"""Cold start: the time to import each function's handler module, against a bare Powertools handler.

Each measurement is a fresh interpreter (as a Lambda cold start is) that times only the import of
the handler module (``functions/<name>/app.py``, or ``bench/reference/bare_powertools_app.py``:
a resolver, Logger, Tracer and Metrics, nothing else); interpreter start-up is the same for all
and left out. Rounds alternate over all modules, medians are printed with the ratio to the bare
handler. Target (issue 11): every handler within 1.2x.

    python bench/import_bench.py [--rounds 9]      # PYTHONPATH as `make bench` sets it
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

from devtools import template
from devtools.project import ROOT

REFERENCE = "bench/reference/bare_powertools_app.py"
TARGET_RATIO = 1.2
PROBE = """
import importlib.util, sys, time
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(time.perf_counter() - t0)
"""


def handler_files() -> dict[str, str]:
    functions = {
        name: resource["Properties"]["CodeUri"]
        for name, resource in template.template()["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    return {name: f"{code_uri}/app.py" for name, code_uri in sorted(functions.items())}


def import_seconds(path: str, environment: dict[str, str]) -> float:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / path)],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return float(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    environment = {
        **os.environ,
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "bench",
        "POWERTOOLS_METRICS_NAMESPACE": "Bench",
        # What a handler may read at import (settings only: nothing is called at import)
        "TABLE_NAME": "bench",
        "COMPONENT_APPID": "wx134c8103faa5a59e",
        "COMPONENT_SECRET_ID": "bench",
        "PYTHONDONTWRITEBYTECODE": "",  # compiled files exist in a deployed layer too
    }
    modules = {"bare Powertools handler": REFERENCE, **handler_files()}
    for path in modules.values():  # compile once, so no round pays for writing .pyc files
        import_seconds(path, environment)
    times: dict[str, list[float]] = {name: [] for name in modules}
    for _ in range(args.rounds):
        for name, path in modules.items():
            times[name].append(import_seconds(path, environment))
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    bare = medians["bare Powertools handler"]
    print(f"handler import time, fresh interpreter each, median of {args.rounds} alternating rounds")
    print(f"  {'module':28s} {'ms':>7s} {'vs bare':>8s}")
    worst = 0.0
    for name, ms in medians.items():
        ratio = ms / bare
        worst = max(worst, ratio)
        print(f"  {name:28s} {ms:7.1f} {ratio:7.2f}x")
    verdict = "within" if worst <= TARGET_RATIO else "OVER"
    print(f"  slowest handler {worst:.2f}x the bare handler: {verdict} the {TARGET_RATIO}x target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
