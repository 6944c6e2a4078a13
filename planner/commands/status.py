"""`planner status`: done / running / failed / pending / stale runs of the sweep, per language and size."""

from __future__ import annotations

import time
from collections import defaultdict

from planner.commands import add_config_option, config_from_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "status",
        help="show done / running / failed / pending / stale runs of the sweep",
        description="Show the sweep's runs per language and size: done / running / failed / pending runs, "
        "stale ones (trained on data that has changed since; `planner sweep` re-runs them), the mean run "
        "time, elapsed time and an estimate of the time left. Reads the study and the data only.",
    )
    add_config_option(p)
    p.add_argument("--storage", metavar="URL", default=None,
                   help="optuna storage of the sweep (default: sweep.storage, else <output_dir>/sweep.db)")
    p.set_defaults(func=run)


def format_status(statuses, now: float) -> str:
    """The table, a totals line and one line per failed or stale point. Pure: statuses in, text out."""
    from optuna.trial import TrialState

    from planner.estimate import format_duration
    from planner.sweep.identity import A_DEVICES
    from planner.sweep.state import PointState, run_seconds, summarize

    cells: dict[tuple[str, int], dict] = defaultdict(lambda: {s: 0 for s in PointState} | {"secs": []})
    def label(point) -> str:  # a mixture run's row names its languages ("el+hi+tr 150": pairs each)
        return point.language or "+".join(point.mixture)

    for s in statuses:
        cell = cells[(label(s.point), s.point.n_pairs)]
        cell[s.state] += 1
        if s.result is not None and (sec := run_seconds(s.result)) is not None:
            cell["secs"].append(sec)
    header = ["language", "pairs", *(s.value for s in PointState), "mean run"]
    rows = [header]
    order = {lang: i for i, lang in enumerate(dict.fromkeys(label(s.point) for s in statuses))}
    for (lang, pairs), c in sorted(cells.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        mean = format_duration(sum(c["secs"]) / len(c["secs"])) if c["secs"] else "-"
        rows.append([lang, str(pairs), *(str(c[s]) for s in PointState), mean])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    prog = summarize(statuses, now)
    lines.append("")
    lines.append(
        f"{prog.done}/{prog.total} done, {prog.running} running, {prog.failed} failed, {prog.pending} pending, "
        f"{prog.stale} stale; "
        f"elapsed {format_duration(prog.elapsed_seconds)}, run time {format_duration(prog.run_seconds)}, "
        f"est. remaining {format_duration(prog.remaining_seconds)}"
    )
    for s in statuses:  # where each running run is, when the sweep gave its workers GPUs (sweep.devices)
        on = [t.user_attrs[A_DEVICES] for t in s.trials
              if t.state == TrialState.RUNNING and A_DEVICES in t.user_attrs]
        if s.state == PointState.RUNNING and on:
            lines.append(f"running {s.point.key} on GPU(s) {on[-1]}")
    failed = [s for s in statuses if s.state == PointState.FAILED]
    for s in failed:
        lines.append(f"failed {s.point.key}: {s.error}")
    stale = [s for s in statuses if s.state == PointState.STALE]
    for s in stale:
        lines.append(f"stale {s.point.key}: its {'/'.join(s.point.languages)} data changed since the run "
                     f"(trial {s.outdated.number})")
    hints = [hint for hint, some in (("retries failed points", failed), ("re-runs stale ones", stale)) if some]
    if hints:
        lines.append(f"`planner sweep` {' and '.join(hints)}.")
    return "\n".join(lines)


def run(args) -> int:
    import optuna
    from planner.sweep import sweep_status

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own summary says what happened
    cfg = config_from_args(args)
    view = sweep_status(cfg, args.storage)
    print(f"sweep '{cfg.experiment}' in {view.spec.display}")
    print(format_status(view.statuses, time.time()))
    if note := view.data.note():
        print(note)
    return 0
