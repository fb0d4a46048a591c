"""pipeline.http: one retry policy (back-off + jitter, Retry-After, truncated bodies, timeouts)
for requests sessions and for any callable, proven against the loopback fault-injecting server."""

from __future__ import annotations

import email.utils
import random
import time
from pathlib import Path

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from pipeline.http import (
    RetryPolicy,
    TransientError,
    call_with_retries,
    describe_error,
    make_session,
    parse_retry_after,
    redact,
    scrub,
)
from tests.servers import Fault, FaultPlan, RangeFileServer

DATA = random.Random(3).randbytes(200_000)


@pytest.fixture
def blob_dir(tmp_path: Path) -> Path:
    (tmp_path / "blob.bin").write_bytes(DATA)
    return tmp_path


def _session(sleeps: list[float], **policy: float) -> requests.Session:
    return make_session(RetryPolicy(**{"max_retries": 4, "backoff_s": 0.2, "timeout_s": 5, **policy}),
                        sleep=sleeps.append)


@pytest.mark.parametrize("kind", [Fault.HTTP_500, Fault.RESET, Fault.TRUNCATE])
def test_transient_faults_are_retried_and_the_body_is_exact(blob_dir: Path, kind: Fault) -> None:
    plan = FaultPlan(fraction=0, fail_first=2, kinds=(kind,))
    sleeps: list[float] = []
    with RangeFileServer(blob_dir, faults=plan) as srv:
        resp = _session(sleeps).get(srv.url_for("blob.bin"))
        assert resp.status_code == 200 and resp.content == DATA
        assert [r.fault for r in srv.requests][:2] == [kind, kind]
        assert len(srv.requests) == 3
    # full jitter: each wait in [0, backoff * 2**(n-1)]
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.2 and 0 <= sleeps[1] <= 0.4


def test_retry_after_is_honoured_and_capped(blob_dir: Path) -> None:
    plan = FaultPlan(fraction=0, fail_first=2, kinds=(Fault.HTTP_503,), retry_after_s=7)
    sleeps: list[float] = []
    with RangeFileServer(blob_dir, faults=plan) as srv:
        resp = _session(sleeps, retry_after_max_s=5).get(srv.url_for("blob.bin"), headers={"Range": "bytes=10-19"})
    assert resp.status_code == 206 and resp.content == DATA[10:20]
    assert sleeps == [5, 5]  # server asked for 7 s; the policy caps at 5


def test_timeouts_are_retried(blob_dir: Path) -> None:
    plan = FaultPlan(fraction=0, fail_first=1, kinds=(Fault.SLOW,), slow_ms=1500)
    sleeps: list[float] = []
    with RangeFileServer(blob_dir, faults=plan) as srv:
        t0 = time.perf_counter()
        resp = _session(sleeps, timeout_s=0.3).get(srv.url_for("blob.bin"))
        assert resp.content == DATA
    assert len(sleeps) == 1 and time.perf_counter() - t0 < 5


def test_gives_up_after_max_retries(blob_dir: Path) -> None:
    sleeps: list[float] = []
    resets = FaultPlan(fraction=1, kinds=(Fault.RESET,), max_consecutive_failures_per_path=99)
    with RangeFileServer(blob_dir, faults=resets) as srv:
        with pytest.raises(requests.ConnectionError):
            _session(sleeps, max_retries=2).get(srv.url_for("blob.bin"))
        assert len(srv.requests) == 3
    errors = FaultPlan(fraction=1, kinds=(Fault.HTTP_500,), max_consecutive_failures_per_path=99)
    with RangeFileServer(blob_dir, faults=errors) as srv:
        resp = _session(sleeps, max_retries=2).get(srv.url_for("blob.bin"))
        assert resp.status_code == 500 and len(srv.requests) == 3  # the caller sees the status


def test_client_errors_are_not_retried(blob_dir: Path) -> None:
    sleeps: list[float] = []
    with RangeFileServer(blob_dir) as srv:
        resp = _session(sleeps).get(srv.url_for("missing.bin"))
        assert resp.status_code == 404 and len(srv.requests) == 1 and not sleeps


def test_call_with_retries_uses_the_same_policy() -> None:
    calls, sleeps = [], []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise TransientError("throttled", retry_after_s=3)
        if len(calls) == 2:
            raise OSError("reset")
        return "ok"

    policy = RetryPolicy(max_retries=3, backoff_s=0.1)
    assert call_with_retries(flaky, policy=policy, retry_on=(TransientError, OSError), what="x",
                             sleep=sleeps.append) == "ok"
    assert sleeps[0] == 3 and 0 <= sleeps[1] <= 0.2
    with pytest.raises(ValueError):  # not in retry_on: no retry
        call_with_retries(lambda: int("x"), policy=policy, retry_on=(OSError,), what="x", sleep=sleeps.append)


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after("12") == 12
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (parse_retry_after(later) or 0) <= 31


def test_redact_and_describe_never_show_query_strings() -> None:
    url = "https://user:pw@acct.blob.core.windows.net/c/x.tif?sv=1&sig=SECRETSIG"
    assert redact(url) == "https://acct.blob.core.windows.net/c/x.tif"
    exc = requests.ConnectionError(f"Max retries exceeded with url: {url}")
    assert "SECRETSIG" not in describe_error(exc) and "pw@" not in redact(url)
    assert scrub("token=abcdef and abcdef", ["abcdef", ""]) == "token=*** and ***"


@given(attempt=st.integers(1, 30), base=st.floats(0.01, 5), cap=st.floats(0.01, 100),
       retry_after=st.none() | st.floats(0, 1e6))
def test_backoff_is_bounded(attempt: int, base: float, cap: float, retry_after: float | None) -> None:
    policy = RetryPolicy(backoff_s=base, backoff_max_s=cap, retry_after_max_s=60, seed=attempt)
    wait = policy.wait_s(attempt, retry_after)
    if retry_after is None:
        assert 0 <= wait <= min(cap, base * 2 ** (attempt - 1)) + 1e-9
    else:
        assert wait == min(retry_after, 60)


def test_a_refused_connection_is_described_by_its_reason() -> None:
    """urllib3 wraps the socket's reason in three reprs and the URL; the one line keeps the reason."""

    from pipeline.http import describe_error

    try:
        requests.get("http://127.0.0.1:9/stac?token=s3cret", timeout=5)
    except requests.ConnectionError as exc:
        text = describe_error(exc)
    assert text == "ConnectionError: [Errno 111] Connection refused"
