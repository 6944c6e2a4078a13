"""The adaptive sweep (research code, not installed; docs/adaptive-sweep.md): a small start design, then
batches of the runs worth most to the plan per training token. Its own benchmark found it plans worse than
the grid at half the grid's compute on 8 of 12 synthetic families and better on none, so it left the
planner; it runs on the planner's sweep through `run_sweep`'s `points`/`controller` seam
(`python -m research.adaptive sweep`).

Modules: `settings` (its own settings), `design` (start design, decision records), `voi` (the value of a
run), `adaptive` (the decisions), `chosen` (the chosen points, sweep_choices.csv), `rounds` (who decides,
on the ledger), `sweep_choices` (its figure and table).
"""
