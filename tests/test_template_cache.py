"""The bulletin template's compiled code is kept between runs (``render._bytecode_cache``)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest

from pipeline.bulletin import render


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary folder of the test's own (Jinja2 puts its cache under it), and a fresh cache."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    render._bytecode_cache.cache_clear()
    yield tmp_path
    render._bytecode_cache.cache_clear()


def _compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    original = jinja2.Environment.compile

    def counting(self: jinja2.Environment, source: str, name: str | None = None, *args: object,
                 **kwargs: object) -> object:
        calls.append(str(name))
        return original(self, source, name, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    return calls


def test_a_second_environment_loads_the_compiled_template(private_tmp: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _compiles(monkeypatch)
    first = render._jinja_env("en").get_template("bulletin.html.j2")
    assert "bulletin.html.j2" in calls
    (folder,) = [p for p in private_tmp.iterdir() if p.name.startswith("_jinja2-cache-")]
    files = sorted(p.name for p in folder.iterdir())
    assert files and all(name.startswith("kp-bulletin-") and name.endswith(".cache") for name in files)
    assert folder.stat().st_mode & 0o077 == 0  # private to the user

    calls.clear()
    again = render._jinja_env("en").get_template("bulletin.html.j2")  # a new run: a new environment
    assert calls == []  # nothing compiled: the code came from the cache
    assert again is not first
    assert again.root_render_func.__code__.co_code == first.root_render_func.__code__.co_code


def test_the_cache_key_covers_the_environment_options(private_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    render._jinja_env("en").get_template("bulletin.html.j2")
    calls = _compiles(monkeypatch)
    monkeypatch.setitem(render._ENV_OPTIONS, "trim_blocks", False)
    render._bytecode_cache.cache_clear()
    render._jinja_env("en").get_template("bulletin.html.j2")
    assert "bulletin.html.j2" in calls  # other options: compiled again, not the other code reused


def test_the_cache_key_covers_the_code_of_the_filters(private_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A compiled template calls the filters as they were when it was compiled, and holds the
    values of those it folded: code from an older version called ``label`` with the newer
    one's arguments and failed (TypeError), and had folded ``"new" | label`` in English into the
    French edition. Another version of a filter's module: compiled again."""
    import sys

    render._jinja_env("en").get_template("bulletin.html.j2")
    calls = _compiles(monkeypatch)
    statuses = Path(sys.modules["pipeline.bulletin.statuses"].__file__ or "")
    edited = private_tmp / "statuses.py"
    edited.write_bytes(statuses.read_bytes() + b"\n# another version\n")
    monkeypatch.setattr(sys.modules["pipeline.bulletin.statuses"], "__file__", str(edited))
    render._bytecode_cache.cache_clear()
    render._jinja_env("en").get_template("bulletin.html.j2")
    assert "bulletin.html.j2" in calls


def test_without_a_usable_temporary_folder_templates_are_compiled(private_tmp: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def unusable(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Cannot determine safe temp directory.")

    monkeypatch.setattr(render, "_BestEffortCache", unusable)
    assert render._bytecode_cache() is None
    assert render._jinja_env("en").get_template("bulletin.html.j2") is not None


def test_a_damaged_file_or_a_full_folder_costs_only_the_saving(private_tmp: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    expected = render._jinja_env("en").get_template("bulletin.html.j2").root_render_func.__code__.co_code
    (folder,) = [p for p in private_tmp.iterdir() if p.name.startswith("_jinja2-cache-")]
    for path in folder.iterdir():  # cut short, as a crash of the disk (not of a run: writes are atomic) would
        path.write_bytes(path.read_bytes()[:40])
    calls = _compiles(monkeypatch)
    again = render._jinja_env("en").get_template("bulletin.html.j2")
    assert "bulletin.html.j2" in calls and again.root_render_func.__code__.co_code == expected

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    for path in folder.iterdir():
        path.unlink()
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", full)  # where Jinja2 writes a file before renaming it
    assert render._jinja_env("en").get_template("bulletin.html.j2").root_render_func.__code__.co_code == expected
    assert list(folder.iterdir()) == []
