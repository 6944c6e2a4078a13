"""The base layer every package imports: the config schema, the user-error type, atomic file writes and
the version. It imports nothing from `planner`, `trainers`, `fits` or `reports`, so dependencies point
down (fits/trainers/reports → core, planner → all of them) and never form a cycle."""

__version__ = "0.2.0"
