"""Budget allocation across languages: exact solvers, fairness and target objectives, bootstrap
uncertainty, black-box search and the standard baselines.

    plan = allocate(fitset, budget=8000, unit="pairs", limits={...}, objective="sum", risk="mean")
    write_allocation(plan, "allocation.csv")   # + allocation_summary.json beside it
"""

from planner.allocation.baselines import BASELINES, BaselineUnavailable, baseline_allocation, baseline_pairs
from planner.allocation.display import format_result
from planner.allocation.io import read_allocation, read_limits, read_summary, read_targets, summary_path, write_allocation
from planner.allocation.plan import (
    CONTRACT_COLUMNS,
    AllocationResult,
    BaselineResult,
    LanguagePlan,
    allocate,
    objective_value,
)
from planner.allocation.problem import AllocationProblem, LanguageLimits, build_problem

__all__ = [
    "BASELINES",
    "CONTRACT_COLUMNS",
    "AllocationProblem",
    "AllocationResult",
    "BaselineResult",
    "BaselineUnavailable",
    "LanguageLimits",
    "LanguagePlan",
    "allocate",
    "baseline_allocation",
    "baseline_pairs",
    "build_problem",
    "format_result",
    "objective_value",
    "read_allocation",
    "read_limits",
    "read_summary",
    "read_targets",
    "summary_path",
    "write_allocation",
]
