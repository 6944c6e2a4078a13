"""Scaling-law fitting: pure math on tables (numpy/scipy/pandas, no torch)."""
