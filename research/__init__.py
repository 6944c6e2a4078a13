"""Research code for the benchmarks and tests: synthetic truth worlds (`truths`, `truths_heldout`,
`truths_maxmin`, `truths_target`) that judge fits and plans where the true curves are known.

Not part of the installed planner (pyproject's package list leaves it out): no product module imports it.
Tests reach it through pytest's `pythonpath` (the repository root); a benchmark run as a script puts the
repository root on `sys.path` itself. It imports the product (core, fits, planner.allocation), never the
other way round (`tests/test_layering.py`).
"""
