"""Benchmarks run by ``make bench`` (``python -m benchmarks``).

Each benchmark is a module ``benchmarks/window_bytes.py`` or ``benchmarks/bench_*.py`` with a
``run() -> list[dict]`` function; every dict is one result row with at least ``name`` and
``value`` (and optionally ``unit``, ``ratio``, ``note``). ``python -m benchmarks`` runs them all
in one process and prints the rows; ``python -m benchmarks window_bytes`` runs a selection.
These are measurements, not timed tests: nothing here asserts.
"""
