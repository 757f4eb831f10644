"""Run the atheris target for a bounded time and report a finding with its reproducer.

    python -m tests.fuzz.run --seconds 600            # make fuzz (FUZZ_SECONDS)
    python -m tests.fuzz.run --replay FILE            # one input again, with what it decoded to

New inputs go to ``--work`` (default ``tests/fuzz/work/``, ignored by git), besides the committed
seeds in ``tests/fuzz/corpus/`` (read, never written). A crash, a timeout (``-timeout``, seconds
per input) or an out-of-memory (``-rss_limit_mb``) leaves its input in the work directory; the
report shows the Python traceback, the input in base64 and what the harness read from it.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEEDS = HERE / "corpus"
DICTIONARY = HERE / "protocol.dict"
WORK = HERE / "work"
# Per input: far more than any input needs (a 64 KiB body parses in about a millisecond).
TIMEOUT_SECONDS = 10
RSS_LIMIT_MB = 1024
MAX_LEN = 72 * 1024
_ARTIFACT = re.compile(r"^(crash|timeout|oom|leak|slow-unit)-")


@dataclass(frozen=True)
class Result:
    returncode: int
    output: str
    artifacts: list[Path]
    seed: int
    seconds: float
    executions: int | None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.artifacts

    @property
    def executions_per_second(self) -> float | None:
        return None if self.executions is None else self.executions / max(self.seconds, 1e-9)

    def summary(self) -> str:
        rate = self.executions_per_second
        speed = f"{self.executions} inputs, {rate:.0f}/s" if rate is not None else "no statistics"
        return f"fuzz run: {self.seconds:.1f} s, {speed}, -seed={self.seed}"

    def report(self) -> str:
        """Everything needed to reproduce a finding and turn it into a test."""
        lines = [self.summary(), f"exit status {self.returncode}", "--- fuzzer output (tail) ---"]
        lines += self.output.splitlines()[-60:]
        for path in self.artifacts:
            data = path.read_bytes()
            lines += [
                f"--- finding: {path} ({len(data)} bytes) ---",
                f"base64: {base64.b64encode(data).decode()}",
                f"again: python -m tests.fuzz.run --replay {path}",
            ]
            if path.name.startswith("crash-"):  # a timeout or oom input is not run again here
                lines.append(_replay(path))
        return "\n".join(lines)


def run(
    seconds: int,
    work: Path = WORK,
    *,
    seed: int | None = None,
    extra: list[str] | None = None,
) -> Result:
    """Fuzz for ``seconds`` from the seeds and whatever ``work``'s corpus holds already."""
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    before = {p for p in work.iterdir() if _ARTIFACT.match(p.name)}
    seed = seed if seed is not None else int.from_bytes(os.urandom(4), "big") % 2**31
    command = [
        sys.executable,
        "-m",
        "tests.fuzz.fuzz_protocol",
        str(corpus),
        str(SEEDS),
        f"-max_total_time={seconds}",
        f"-timeout={TIMEOUT_SECONDS}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-max_len={MAX_LEN}",
        f"-dict={DICTIONARY}",
        f"-seed={seed}",
        f"-artifact_prefix={work}/",
        "-print_final_stats=1",
        *(extra or []),
    ]
    started = time.monotonic()
    completed = subprocess.run(
        command,
        cwd=HERE.parents[1],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=seconds + 120,
        check=False,
    )
    elapsed = time.monotonic() - started
    output = completed.stdout + completed.stderr
    found = re.search(r"stat::number_of_executed_units:\s*(\d+)", output)
    artifacts = sorted(p for p in work.iterdir() if _ARTIFACT.match(p.name) and p not in before)
    return Result(completed.returncode, output, artifacts, seed, elapsed, int(found[1]) if found else None)


def _replay(path: Path) -> str:
    """``--replay`` in a process of its own (a crash may be one that takes the process down)."""
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "tests.fuzz.run", "--replay", str(path)],
            cwd=HERE.parents[1],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "the replay did not end within 60 s"
    return completed.stdout + completed.stderr


def describe(data: bytes) -> str:
    """Run one input in this process: what the harness read from it, and what it raised."""
    from tests.fuzz.harness import Input
    from tests.fuzz.harness import run as run_input

    inp = Input(data)
    try:
        outcome = run_input(inp)
    except BaseException:  # what the fuzzer would report
        outcome = "FINDING\n" + traceback.format_exc()
    read = "\n".join(f"  {kind}: {value!r}"[:2000] for kind, value in inp.trace)
    return f"the harness read:\n{read}\noutcome: {outcome}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "600")))
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--replay", type=Path, help="run one input again and show it")
    args = parser.parse_args(argv)
    if args.replay:
        print(describe(args.replay.read_bytes()))
        return 0
    result = run(args.seconds, args.work, seed=args.seed)
    print(result.report() if not result.ok else result.summary())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
