"""Layering: the installed product never imports the research code or the benchmarks, and the research
code imports only the product (never the benchmarks or the tests).

`research/` and `benchmarks/` are not installed (pyproject's package list), so a product module that
imported them would work in this checkout and fail in an installed planner. Read from the source with
`ast`, so a function-level import counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("core", "fits", "trainers", "planner", "reports")


def imported_roots(path: Path) -> set[str]:
    """The top-level names a module imports (absolute imports only; a relative one stays in its package)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            roots.add(node.args[0].value.split(".")[0])
    return roots


def offenders(packages, forbidden) -> list[str]:
    found = []
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            bad = imported_roots(path) & set(forbidden)
            if bad:
                found.append(f"{path.relative_to(ROOT)} imports {', '.join(sorted(bad))}")
    return found


def test_product_does_not_import_research_or_benchmarks():
    assert all((ROOT / package).is_dir() for package in PRODUCT)
    assert offenders(PRODUCT, ("research", "benchmarks")) == []


def test_research_imports_only_the_product():
    assert (ROOT / "research" / "truths.py").is_file()
    assert offenders(["research"], ("benchmarks", "tests")) == []


def test_research_is_not_installed():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    include = next(line for line in text.splitlines() if line.startswith("include ="))
    assert "research" not in include and "benchmarks" not in include


def test_the_check_sees_an_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from research.truths import World\n    import benchmarks.plan_regret\n"
                      "    importlib.import_module('research')\n", encoding="utf-8")
    assert imported_roots(module) == {"research", "benchmarks"}


# The floors of the product (docs/architecture.md): a package may import only the packages below it.
FLOORS = {
    "core": set(),
    "fits": {"core"},
    "trainers": {"core"},
    "reports": {"core", "fits", "trainers"},
    "planner": {"core", "fits", "trainers", "reports"},
}


def test_every_package_imports_only_the_floors_below_it():
    assert set(FLOORS) == set(PRODUCT)
    found = []
    for package, allowed in FLOORS.items():
        found += offenders([package], set(PRODUCT) - allowed - {package})
    assert found == []


def test_the_floor_check_sees_an_import_back_up(tmp_path):
    package = tmp_path / "reports"
    package.mkdir()
    (package / "m.py").write_text("def f():\n    from planner.launch import PLAN\n", encoding="utf-8")
    assert imported_roots(package / "m.py") & set(PRODUCT) - FLOORS["reports"] == {"planner"}
