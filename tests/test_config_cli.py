"""Config validation and the CLI's user-error contract (exit 2, one paragraph, no traceback)."""

from __future__ import annotations

import pytest
import yaml

from planner.cli import VERBS, build_parser, main
from core.config import PlannerConfig, load_config, read_resolved, write_resolved


def _write(tmp_path, data, name="planner.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_demo_config_loads_and_is_the_default():
    cfg = load_config()
    assert isinstance(cfg, PlannerConfig)
    assert len(cfg.languages) >= 3 and set(cfg.languages) <= {"ar", "el", "hi", "tr", "vi", "zh"}  # the seed study's
    assert cfg.data.source == "demo" and cfg.model.name == "smollm2-135m"
    quick = load_config(preset="quick")  # the tiny model: the fast tour and the tests
    assert quick.data.source == "demo" and quick.model.name == "tiny" and len(quick.languages) >= 3


def test_unknown_key_is_named(tmp_path):
    path = _write(tmp_path, {"languages": ["de"], "train": {"epochz": 3}})
    with pytest.raises(Exception) as info:
        load_config(path)
    assert "train.epochz" in str(info.value) and "unknown key" in str(info.value)


def test_wrong_type_is_named(tmp_path):
    path = _write(tmp_path, {"languages": ["de"], "sweep": {"sizes": [100, "lots"]}})
    with pytest.raises(Exception) as info:
        load_config(path)
    assert "sweep.sizes.1" in str(info.value)


def test_cross_field_checks(tmp_path):
    with pytest.raises(Exception, match="source language"):
        load_config(_write(tmp_path, {"languages": ["en", "de"]}))
    with pytest.raises(Exception, match="not in languages"):
        load_config(_write(tmp_path, {"languages": ["de"], "budget": {"languages": {"fr": {"weight": 2}}}}))
    with pytest.raises(Exception, match="divisible"):
        load_config(_write(tmp_path, {"model": {"hidden_size": 130, "heads": 4}}))


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(preset="quick")
    path = write_resolved(cfg, tmp_path / "out")
    assert "planner_version" in path.read_text(encoding="utf-8")
    assert read_resolved(tmp_path / "out") == cfg


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["data", "stats", "--config", "does-not-exist.yaml"], "does-not-exist.yaml"),
        (["run", "--config", "{tmp}/bad.yaml"], "unknown key 'nonsense'"),
        (["run", "--config", "{tmp}/notyaml.yaml"], "not valid YAML"),
    ],
)
def test_cli_user_errors_exit_2_without_traceback(tmp_path, capsys, argv, needle):
    _write(tmp_path, {"nonsense": 1}, "bad.yaml")
    (tmp_path / "notyaml.yaml").write_text("languages: [de\n", encoding="utf-8")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in " ".join(err.split())  # the message is wrapped to the terminal width
    assert "Traceback" not in err and err.startswith("error: ")


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help(verb, capsys):
    with pytest.raises(SystemExit) as info:
        main([verb, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"planner {verb}" in out and "--" in out


def test_parser_lists_all_verbs():
    help_text = build_parser().format_help()
    for verb in VERBS:
        assert verb in help_text


def test_config_catches_late_failures_at_load_time(tmp_path):
    """Mistakes that would otherwise surface only after the sweep are config errors."""
    cases = [
        ({"sweep": {"seeds": []}}, "at least one seed"),
        ({"sweep": {"seeds": [0, 0]}}, "seeds must not repeat"),
        ({"final": {"baselines": ["unifrom"]}}, "unknown baselines ['unifrom']"),
        ({"budget": {"objective": "target"}}, "no budget.languages.<code>.target"),
        ({"budget": {"objective": "target", "risk": "mean", "target_confidence": 0.9,
                     "languages": {"el": {"target": 40}}}}, "target_confidence other than 0.5 needs the fits' draws"),
        ({"budget": {"target_confidence": 1.0}}, "target_confidence"),
        ({"fit": {"bootstrap": 0}, "budget": {"objective": "target", "target_confidence": 0.9,
                                              "languages": {"el": {"target": 40}}}}, "fit.bootstrap is 0"),
        ({"data": {"general_ratio": 0.5}}, "needs data.general_dir"),
    ]
    for data, needle in cases:
        with pytest.raises(Exception) as info:
            load_config(_write(tmp_path, data))
        assert needle in str(info.value), (data, str(info.value))


def test_config_baseline_names_match_the_allocator():
    from planner.allocation import BASELINES
    from core.config import BASELINE_NAMES

    assert tuple(BASELINES) == BASELINE_NAMES
