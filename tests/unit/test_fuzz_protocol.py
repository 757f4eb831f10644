"""The protocol fuzz target (tests/fuzz): its seeds, its findings, and a bounded atheris run.

``test_bounded_fuzz_run`` fuzzes ``FUZZ_TEST_RUNS`` inputs from a fixed seed (at most
``FUZZ_TEST_SECONDS``, default 60) from the committed seeds
in a subprocess; ``make fuzz`` runs the same for longer. A finding fails it with the Python
traceback, the input in base64 and what the harness read from it (tests/fuzz/run.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wechat_core import clock

from tests.fuzz import harness, run
from tests.fuzz.harness import Input, SeedWriter

pytestmark = pytest.mark.unit

SEEDS = sorted(run.SEEDS.iterdir())


def test_there_are_seeds_for_every_path() -> None:
    paths = {p.name.split("-")[0] for p in SEEDS}
    assert {"envelope", "delivery", "decrypt", "message", "regression"} <= paths


@pytest.mark.parametrize(
    "seed", [p for p in SEEDS if not p.name.startswith("regression-")], ids=lambda p: p.name
)
def test_every_seed_is_accepted_on_its_path(seed: Path) -> None:
    """The simulator's pushes pass our checks end to end (so the fuzzer starts deep), and the
    seeds still decode as make_corpus wrote them."""
    assert harness.one_input(seed.read_bytes()) == seed.name.split("-")[0] + ":ok"


@pytest.mark.parametrize(
    "finding", [p for p in SEEDS if p.name.startswith("regression-")], ids=lambda p: p.name
)
def test_findings_are_refused_with_our_errors(finding: Path) -> None:
    outcome = harness.one_input(finding.read_bytes())
    assert outcome.split(":")[1] != "ok"


def test_the_harness_restores_the_clock() -> None:
    before = clock.now()
    harness.one_input(SEEDS[0].read_bytes())
    assert abs(clock.now() - before) < 60


@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("number"), st.integers(0, 2**40)).map(lambda t: (*t, st.integers(0, t[1]))),
            st.tuples(st.just("blob"), st.integers(0, 70_000)).map(
                lambda t: (*t, st.binary(max_size=min(40, t[1])))
            ),
        ),
        max_size=12,
    ),
    data=st.data(),
    rest=st.binary(max_size=40),
)
def test_seed_writer_writes_what_input_reads(
    steps: list[tuple[str, int, st.SearchStrategy[object]]], data: st.DataObject, rest: bytes
) -> None:
    """make_corpus depends on it: FuzzedDataProvider reads numbers from the end, bytes from the front."""
    writer, expected = SeedWriter(), []
    for kind, top, values in steps:
        value = data.draw(values)
        getattr(writer, kind)(top, value)
        expected.append(value)
    writer.rest(rest)
    inp = Input(writer.data())
    assert [inp.number(top) if kind == "number" else inp.blob(top) for kind, top, _ in steps] == expected
    assert inp.rest() == rest


# `make test` fuzzes the same inputs on every machine: a fixed seed and a fixed number of runs
# (time only caps a very slow machine), so what CI finds, a developer finds too and it became a
# test before landing. `make fuzz` (random seeds, minutes) is where new findings come from.
TEST_SEED = int(os.environ.get("FUZZ_TEST_SEED", "20261130"))
TEST_RUNS = int(os.environ.get("FUZZ_TEST_RUNS", "100000"))


def test_bounded_fuzz_run(tmp_path: Path) -> None:
    seconds = int(os.environ.get("FUZZ_TEST_SECONDS", "60"))
    result = run.run(seconds, tmp_path, seed=TEST_SEED, extra=[f"-runs={TEST_RUNS}"])
    print(result.summary())  # shown with -s or -rP
    assert result.ok, result.report()
    # A target that stopped fuzzing (an import error, an instrumentation change) is no pass.
    assert result.executions is not None, result.report()
    assert result.executions >= min(TEST_RUNS, 20 * seconds), result.report()
