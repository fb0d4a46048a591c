"""The header of ``benchmarks/RESULTS.md`` states what else used the machine during the run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks import results


def test_cpu_use_counts_this_process() -> None:
    before = results.cpu_use()
    if before is None:
        pytest.skip("no /proc/stat")
    sum(i * i for i in range(3_000_000))  # ~0.2 s of this process's CPU
    delta = results.cpu_delta(before, results.cpu_use())
    assert delta is not None and delta["own"] > 0.05
    assert delta["others"] >= 0 and delta["steal"] >= 0


def test_other_processes_never_below_zero() -> None:
    delta = results.cpu_delta({"own": 0.0, "busy": 10.0, "steal": 1.0}, {"own": 5.0, "busy": 14.9, "steal": 1.5})
    assert delta == {"own": 5.0, "others": 0.0, "steal": 0.5}


@pytest.mark.parametrize("cpu", [{"own": 1234.4, "others": 56.2, "steal": 3.0}, None])
def test_header_says_what_else_used_the_cores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              cpu: dict[str, float] | None) -> None:
    monkeypatch.setattr(results, "RESULTS", tmp_path / "RESULTS.md")
    monkeypatch.setattr(results.os, "cpu_count", lambda: 2)
    rows = [{"name": "speedup_2_workers", "value": 1.7, "unit": "x"}]
    results.write_results(rows, machine="2 cores", load=0.4, seconds=1200.0, cpu=cpu)
    header = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    assert "Run of 20.0 min" in header and "load average (1 min) 0.4 at its start" in header
    if cpu is None:
        assert "was not measured" in header
    else:
        assert ("of the 2,400 CPU-s the 2 cores had, the benchmark used 1,234, other processes 56 and the "
                "hypervisor took 3 (steal)") in header
    assert "| speedup_2_workers | 1.7 | x |  | >= 1.6 | yes |" in header


def _table(text: str, name_column: int, *, quoted: bool) -> dict[str, list[str]]:
    """Rows of the Markdown tables in ``text`` whose ``name_column`` is a snake_case name, in
    backticks (``quoted``: the README) or followed by a note in brackets (RESULTS.md), by that name."""
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) <= name_column or cells[name_column].startswith("`") != quoted:
            continue
        name = cells[name_column].strip("`").split(" (")[0]
        if name.replace("_", "").isalnum() and name.islower():
            rows[name] = cells
    return rows


def test_readme_quotes_the_results_table() -> None:
    # Every target figure the README quotes is the value of RESULTS.md's row of that name, with the
    # same verdict, and the README names the commit RESULTS.md says the table was run at.
    repo = Path(__file__).resolve().parents[1]
    readme = (repo / "README.md").read_text(encoding="utf-8")
    table = (repo / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    quoted = {k: v for k, v in _table(readme, 1, quoted=True).items() if len(v) == 4}
    measured = {k: v for k, v in _table(table, 0, quoted=False).items() if len(v) == 6}
    assert len(quoted) >= 8, sorted(quoted)
    for name, (_, _, value, met) in quoted.items():
        assert name in measured, f"README quotes {name}, which RESULTS.md has no row for"
        assert (value, met) == (measured[name][1], measured[name][5]), name
    targets = {k for k, v in measured.items() if v[4] and k != "measurement"}
    assert targets <= quoted.keys(), f"README does not quote {sorted(targets - quoted.keys())}"
    commit = re.search(r"fresh clone at commit ([0-9a-f]{7,})", table)
    assert commit is not None and f"The latest table (commit {commit.group(1)}," in readme


def test_a_ratio_of_several_pairs_is_their_median() -> None:
    from benchmarks.bench_scale import _median_pair

    runs = [(1.52, "a"), (1.71, "b"), (1.60, "c")]
    (ratio, which), note = _median_pair(runs)
    assert (ratio, which) == (1.60, "c")
    assert note == "median of 3 pairs of runs, in turn: 1.520, 1.710, 1.600"
    assert _median_pair([(0.3, "x")]) == ((0.3, "x"), "")


def test_parts_go_after_a_benchmark_that_takes_them(capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m benchmarks bench_scale 4`` runs part (4) of bench_scale; a part with no
    benchmark, or after one whose ``main`` takes no arguments, is refused before anything runs."""
    from benchmarks.__main__ import _takes_argv, main

    assert _takes_argv("bench_scale") and not _takes_argv("bench_detect")
    assert main(["4"]) == 2
    assert "no benchmark named 4;" in capsys.readouterr().err
    assert main(["bench_detect", "4"]) == 2
    assert "bench_detect takes no arguments, given 4" in capsys.readouterr().err
    for bad in (["7"], ["--quik"]):  # refused before anything runs or RESULTS.md is rewritten
        with pytest.raises(SystemExit) as exit_info:
            main(["bench_scale", *bad])
        assert exit_info.value.code == 2
        assert f"unknown argument(s) {bad[0]}" in capsys.readouterr().err
