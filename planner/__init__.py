"""Scaling-law data allocation planner for multilingual instruction tuning."""

__version__ = "0.1.0"
