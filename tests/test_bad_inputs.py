"""The bad-input corpus (``tests/bad_inputs/``, issue 17) through the real command line, in process.

One parametrised test: each case is a small file (or a few) plus the expected exit status and a
fragment of the expected message; the case must come out GOOD (one ``error:`` line naming the
file, field or item, the right exit status, nothing written, no traceback; see
:mod:`tests.bad_inputs.harness`). Cases that need a whole run on imagery (an asset missing,
truncated or inconsistent: skipped, listed in the manifest) are marked slow.

``python -m tests.bad_inputs`` classifies the same cases against any checkout (GOOD / NOISY /
WRONG), which is how the before/after figures in the README were measured.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bad_inputs.harness import Case, Scenario, judge, load_cases, run_case, write_tiny_scenario

CASES = load_cases()


@pytest.fixture(scope="module")
def tiny_scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return write_tiny_scenario(tmp_path_factory.mktemp("tiny-scenario"))


def test_the_corpus_is_large_and_covers_every_kind() -> None:
    kinds = {c.name.split("/")[0] for c in CASES}
    assert len(CASES) >= 60
    assert kinds >= {"config", "aoi", "cli", "catalog", "tables"}
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if c.slow else []) for c in CASES]
)
def test_bad_input(case: Case, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    scenario = request.getfixturevalue("tiny_scenario") if case.needs_scenario else None
    outcome = run_case(case, tmp_path / "case", scenario)
    verdict = judge(case, outcome)
    assert verdict.verdict == "GOOD", (
        f"{case.name} ({case.about}): {verdict.verdict}: {'; '.join(verdict.reasons)}\n"
        f"--- stderr ---\n{outcome.stderr[-3000:]}"
    )
