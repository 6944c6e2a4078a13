"""The adaptive sweep (research code, not installed; docs/adaptive-sweep.md): a small start design, then
batches of the runs worth most to the plan per training token. Its own benchmark found it plans worse than
the grid at half the grid's compute on 8 of 12 synthetic families and better on none, so it left the
planner; it runs on the planner's sweep one round at a time, through `run_sweep`'s `points` seam
(`python -m research.adaptive sweep`).

Modules: `settings` (its own settings), `design` (start design, decision records), `voi` (the value of a
run), `adaptive` (the decisions), `chosen` (the chosen points, sweep_choices.csv), `rounds` (the rounds:
run, then decide, on the ledger), `sweep_choices` (its figure and table).
"""
