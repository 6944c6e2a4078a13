"""Scaling-law data allocation planner for multilingual instruction tuning: the conductor (CLI, sweep,
allocation, final-run launcher). The shared base (config, errors, files) lives in `core`."""

from core import __version__

__all__ = ["__version__"]
