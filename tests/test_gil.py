"""pipeline.gil: the switch interval a run sets, and restores (a whole run: see
``tests/test_background_writes.py``)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from pipeline import gil


@pytest.fixture
def default_interval() -> Iterator[float]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    yield 0.005
    sys.setswitchinterval(before)


def test_a_run_shortens_the_interval_and_restores_it(default_interval: float) -> None:
    with gil.responsive():
        assert sys.getswitchinterval() == pytest.approx(gil.SWITCH_INTERVAL_S, abs=2e-6)
    assert sys.getswitchinterval() == pytest.approx(default_interval, abs=2e-6)


def test_an_interval_already_shorter_is_kept(default_interval: float) -> None:
    sys.setswitchinterval(0.0001)
    with gil.responsive():
        assert sys.getswitchinterval() == pytest.approx(0.0001, abs=2e-6)
    assert sys.getswitchinterval() == pytest.approx(0.0001, abs=2e-6)


def test_overlapping_runs_restore_the_interval_when_the_last_ends(default_interval: float) -> None:
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, float] = {}

    def first() -> None:
        with gil.responsive():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with gil.responsive():
            second_in.set()
            first_out.wait(5)
            seen["after_first_left"] = sys.getswitchinterval()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen["after_first_left"] == pytest.approx(gil.SWITCH_INTERVAL_S, abs=2e-6)  # the second run still holds it
    assert sys.getswitchinterval() == pytest.approx(default_interval, abs=2e-6)


def test_an_error_in_the_block_restores_the_interval(default_interval: float) -> None:
    with pytest.raises(RuntimeError), gil.responsive():
        raise RuntimeError("boom")
    assert sys.getswitchinterval() == pytest.approx(default_interval, abs=2e-6)

