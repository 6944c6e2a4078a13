"""The experiment config (`planner.yaml`), validated by pydantic.

One YAML file describes a whole experiment. Unknown keys and wrong types are errors that name the key
(`extra="forbid"` everywhere). `load_config` turns validation errors into a `UserError` whose message
lists every bad key with its dotted path, so a user never sees a pydantic traceback.
"""

from __future__ import annotations

import json
import re
import reprlib
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from core import __version__
from core.errors import UserError
from core.units import DEFAULT_CURRENCY
from core.files import atomic_write_text, not_a_file
from core.strict import MAX_DRAWS, MAX_SEED, Strict as _Strict, check_seed_flag, unique_seeds
from core.run_config import (  # noqa: F401  (part of this schema)
    AlignConfig, DataConfig, LoraConfig, ModelConfig, TrainConfig,
)
from core.sweep_config import SweepConfig  # noqa: F401  (part of this schema)
from core.tracking_config import TrackingConfig

DEMO_CONFIG_NAME = "demo.yaml"
RESOLVED_CONFIG_NAME = "resolved_config.yaml"

# A language code becomes part of file names (run directories, data.general_dir/<code>.jsonl), so it is
# letters and digits, optionally joined by single '-' or '_' (de, pt-br, zh_CN): never a path.
_LANGUAGE_CODE = re.compile(r"[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*")
LANGUAGE_CODE_RULE = "letters and digits, optionally joined by '-' or '_' (e.g. de, pt-br, zh_CN)"


class FitConfig(_Strict):
    metric: str = "chrf"
    pooling: Literal["population", "none"] = Field(
        "population",
        description="'population': one law for all languages with a prior learned from all of them and posterior "
        "draws (fits/bayes.py); 'none': each language fitted alone, robustly, with a bootstrap.",
    )
    law: Literal["auto", "power", "offset", "log", "shared"] = Field(
        "auto",
        description="auto: the offset law when zero-shot runs exist, else power or log by backtest (pooling "
        "population; per language with pooling none). offset needs pooling population, shared needs none.",
    )
    x: Literal["pairs", "tokens"] = "pairs"
    ceiling: float | None = Field(
        None, description="Pin the power law's asymptote (pooling none only); by default it is fitted."
    )
    bootstrap: int = Field(1000, ge=0, le=MAX_DRAWS, description="Uncertainty draws: posterior draws (population) or bootstrap refits (none).")

    @model_validator(mode="after")
    def _law_fits_pooling(self) -> "FitConfig":
        if self.pooling == "population" and self.law == "shared":
            raise ValueError("fit.law 'shared' needs fit.pooling 'none' (the population prior already pools the exponent)")
        if self.pooling == "none" and self.law == "offset":
            raise ValueError("fit.law 'offset' needs fit.pooling 'population'")
        if self.pooling == "population" and self.ceiling is not None:
            raise ValueError("fit.ceiling pins the asymptote of per-language fits only: set fit.pooling 'none' or drop it")
        return self


class LanguageBudget(_Strict):
    min_pairs: int | None = Field(None, ge=0)
    max_pairs: int | None = Field(
        None, ge=0, description="The most pairs the plan may give this language: the pairs held or that can be "
        "bought (default: the training pool). It may exceed the pool: the plan's pairs beyond the pool are marked "
        "to_buy; the pool only has to hold the sweep's pilot data (largest sweep size + test split).",
    )
    price_per_pair: float | None = Field(
        None, gt=0.0, description="What one pair of this language costs, in budget.currency: required for every "
        "language under budget.unit money; with any unit it prices the pairs the plan has to buy.",
    )
    weight: float = Field(1.0, ge=0.0)
    target: float | None = None


class BudgetConfig(_Strict):
    total: float = Field(200_000, gt=0, description="The budget, in `unit`s.")
    unit: Literal["pairs", "tokens", "money"] = Field(
        "tokens", description="tokens: a pair costs its tokens, its English + target text in the model's tokenizer "
        "(so languages with long tokenisations are priced fairly); pairs: every pair costs 1; money: a pair costs "
        "its language's budget.languages.<code>.price_per_pair, in budget.currency.",
    )
    currency: str = Field(
        DEFAULT_CURRENCY, min_length=1, max_length=12,
        description="The label printed with money amounts (unit money, price_per_pair), e.g. USD or EUR.",
    )
    objective: Literal["sum", "maxmin", "target"] = "sum"
    risk: Literal["mean", "expected"] = Field(
        "expected", description="expected: maximise the objective averaged over the fits' draws (the posterior); "
        "mean: plug in the point fits.",
    )
    solver: Literal["exact", "optuna"] = "exact"
    max_epochs: float = Field(1.0, gt=0.0)
    smallest_run_floor: Literal["auto", "always", "never"] = Field(
        "auto", description="When the plan gives each language at least its smallest proxy run's data (its "
        "curve was not measured below; 0 where an offset curve rests on a zero-shot run): auto = under the "
        "maxmin objective and a user objective, not under sum; always; never.",
    )
    target_confidence: float = Field(
        0.5, gt=0.0, lt=1.0, description="objective target, risk expected: the share of the fits' draws that must "
        "reach each language's target (0.5: the median, as likely above as below; 0.9: safer and dearer).",
    )
    languages: dict[str, LanguageBudget] = Field(default_factory=dict)


# The baseline recipes `planner allocate` computes (planner.allocation.baselines); kept here so a typo in
# the config fails at load time rather than after the sweep.
BASELINE_NAMES = ("uniform", "proportional", "temperature-0.3", "temperature-0.5", "temperature-0.7", "unimax")


def baseline_name_problems(names) -> tuple[list[str], list[str]]:
    """(the names that are no baseline, the names given more than once) of a list of baselines; the
    config, `planner launch --baselines` and the truth-test benchmark each refuse them in their own words."""
    names = list(names)
    return [n for n in names if n not in BASELINE_NAMES], sorted({n for n in names if names.count(n) > 1})


class FinalConfig(_Strict):
    baselines: list[str] = Field(
        default_factory=lambda: ["uniform"], description=f"Baseline mixtures trained beside the plan: {', '.join(BASELINE_NAMES)}."
    )
    seeds: list[int] = Field(
        default_factory=lambda: [0, 1],
        description="Every mixture (the plan and each baseline) is trained once per seed; differences are paired "
        "by seed. One seed cannot tell a plan from a baseline: final-run seed noise is often larger than the gain.",
    )
    launcher: Literal["local", "accelerate", "torchrun"] = "local"
    num_processes: int = Field(1, ge=1)
    epochs: float | None = Field(None, gt=0.0, description="Default: train.epochs.")
    reduced_budget: bool = Field(
        False, description="Also train the plan at the budget fraction at which it is predicted to match "
        "uniform's objective (the allocation's 'budget saved'), to check the saving on real runs.",
    )
    checkpoint_steps: int | None = Field(
        50, ge=1, description="Save a final run's whole training state every this many optimizer steps "
        "(atomically); a killed `planner launch`/`planner run` resumes from it with the same result. null: never.",
    )
    transfer_plan: bool = Field(
        True, description="Also train the transfer-aware plan when the allocation has one (the sweep ran "
        "mixture proxy runs: mixture rows in the runs table).",
    )
    sharding: Literal["none", "fsdp"] = Field(
        "none", description="How a multi-process final run holds the model: 'none' = a full copy per process "
        "(DDP); 'fsdp' = a full fine-tune sharded over the processes with torch FSDP2 (each decoder layer a "
        "unit), for models too large for one GPU. Not with model.lora. One process: no effect."
    )
    barrier_timeout_minutes: float = Field(
        60.0, gt=0.0, description="Under a multi-process launch: how long any process waits for the others at "
        "a collective or barrier (e.g. while rank 0 writes a run's results) before the launch fails."
    )
    target_check: bool = Field(
        True, description="When budget.languages sets targets: train each language alone at the pairs the "
        "target plan says it needs (allocation_target.csv; one seed, the proxy recipe) and record whether it "
        "reached its target and landed inside the predicted interval (final/targets.csv).",
    )

    @model_validator(mode="before")
    @classmethod
    def _single_seed(cls, data):
        # `final.seed: N` (one seed, earlier configs) means `final.seeds: [N]`.
        if isinstance(data, dict) and "seed" in data:
            if "seeds" in data:
                raise ValueError("give final.seeds (a list) or final.seed, not both")
            data = {**data, "seeds": [data["seed"]]}
            del data["seed"]
        return data

    @field_validator("seeds")
    @classmethod
    def _seeds_unique(cls, v: list[int]) -> list[int]:
        return unique_seeds(v)

    @field_validator("baselines")
    @classmethod
    def _known_baselines(cls, v: list[str]) -> list[str]:
        unknown, repeated = baseline_name_problems(v)
        if unknown:
            raise ValueError(f"unknown baselines {unknown}; choose from {list(BASELINE_NAMES)}")
        if repeated:  # each would be trained and compared twice, counted as two baselines
            raise ValueError("baselines must not repeat")
        return v


class PlannerConfig(_Strict):
    experiment: str = Field("demo", min_length=1, description="The study's name on the ledger and the report's title.")
    output_dir: str = Field("outputs/demo", description="Relative paths are relative to the working directory.")
    seed: int = Field(0, ge=0, le=MAX_SEED)
    languages: list[str] = Field(default_factory=lambda: ["ar", "el", "hi", "tr", "vi", "zh"])
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    align: AlignConfig = Field(default_factory=AlignConfig)
    sweep: SweepConfig = Field(default_factory=SweepConfig)
    fit: FitConfig = Field(default_factory=FitConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    final: FinalConfig = Field(default_factory=FinalConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)  # never in a run's identity: see run_settings

    @field_validator("languages")
    @classmethod
    def _languages_unique(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("list at least one language code")
        if len(set(v)) != len(v):
            raise ValueError("language codes must not repeat")
        if "en" in v:
            raise ValueError("'en' is the source language; list only target languages")
        if bad := [code for code in v if not _LANGUAGE_CODE.fullmatch(code)]:
            raise ValueError(f"language codes are {LANGUAGE_CODE_RULE}, not {bad}")
        return v

    @model_validator(mode="after")
    def _cross_section_checks(self) -> "PlannerConfig":
        unknown = sorted(set(self.budget.languages) - set(self.languages))
        if unknown:
            raise ValueError(f"budget.languages names {unknown}, which are not in languages {self.languages}")
        if self.budget.objective == "target" and not any(b.target is not None for b in self.budget.languages.values()):
            raise ValueError("budget.objective is 'target' but no budget.languages.<code>.target is set")
        if self.budget.objective == "target" and self.budget.target_confidence != 0.5:
            if self.budget.risk == "mean":
                raise ValueError("budget.target_confidence other than 0.5 needs the fits' draws: set budget.risk to "
                                 "'expected' (the point fits of risk 'mean' have only their median)")
            if self.fit.bootstrap == 0:
                raise ValueError("budget.target_confidence other than 0.5 needs the fits' draws: fit.bootstrap is 0 "
                                 "(set it to 1000, or leave the confidence at 0.5)")
        if self.data.general_ratio > 0 and not self.data.general_dir:
            raise ValueError("data.general_ratio > 0 needs data.general_dir (per-language {code}.jsonl files)")
        if self.sweep.has_mixture_runs and len(self.languages) < 2:
            raise ValueError("sweep.mixtures and sweep.probes need at least two languages (a mixture of one is a "
                             "proxy run)")
        for i, probe in enumerate(self.sweep.probes, 1):
            missing, unknown = sorted(set(self.languages) - set(probe)), sorted(set(probe) - set(self.languages))
            if missing or unknown:
                raise ValueError(f"sweep.probes entry {i} must give pairs for every language of {self.languages} and "
                                 f"no other" + (f"; missing {missing}" if missing else "")
                                 + (f"; not configured {unknown}" if unknown else ""))
            if len(shares := set(probe.values())) == 1 and (n := shares.pop()) in self.sweep.mixtures:
                raise ValueError(f"sweep.probes entry {i} is the uniform mixture of sweep.mixtures "
                                 f"({n} pairs each), which the sweep already runs")
        layers = self.model.layers
        if self.model.name == "tiny" and not -(layers + 1) <= self.align.layer <= layers:
            raise ValueError(f"align.layer is {self.align.layer}, but the tiny model has {layers} layers: use "
                             f"{-(layers + 1)} .. {layers} (0 = the embedding output, -1 = the last layer)")
        if self.sweep.leave_one_out and len(self.languages) < 3:
            raise ValueError("sweep.leave_one_out needs at least three languages (leaving one of two out leaves a "
                             "single-language run, which the grid already has)")
        return self

    @property
    def out(self) -> Path:
        return Path(self.output_dir)


def check_flags(seed: int | None = None, languages: list[str] | tuple[str, ...] = ()) -> None:
    """The schema's rules for the same values given as command-line flags (--seed, --language)."""
    if seed is not None:
        check_seed_flag(seed)
    for i, code in enumerate(languages):
        if not _LANGUAGE_CODE.fullmatch(code):
            raise UserError(f"--language {code!r} is not a language code: codes are {LANGUAGE_CODE_RULE}.",
                            "Pass a code from the config's languages or the data source.")
        if code == "en":  # the schema's rule for `languages`: English→English would train and score a copy task
            raise UserError("--language en is the source language: every pair is English→X.",
                            "Pass a target language code, e.g. one of the config's languages.")
        if code in languages[:i]:
            raise UserError(f"--language {code} is given more than once.", "Give each language once.")


# Metrics a proxy run measures teacher-forced on the whole test split; any other fitted metric (chrf, bleu,
# comet, a user's name) needs generated translations.
HELDOUT_METRICS = ("loss", "bpb")


def proxy_generates(cfg: PlannerConfig) -> bool:
    """Whether a proxy run translates its test sentences: only when `fit.metric` is a generated metric
    (decoding is most of a small model's evaluation); final runs always do."""
    return cfg.fit.metric not in HELDOUT_METRICS


def run_settings(cfg: PlannerConfig) -> dict:
    """Every setting a training run's result depends on (data, model, train, align, and whether a proxy
    run generates), JSON-ready; not `model.threads`, which decides only how fast it runs. What run
    identities and study hashes are made of."""
    dumped = cfg.model_dump(mode="json")
    settings = {section: dumped[section] for section in ("data", "model", "train", "align")}
    settings["model"].pop("threads", None)
    settings["proxy_generates"] = proxy_generates(cfg)
    return settings


_short_repr = reprlib.Repr()
_short_repr.maxlevel, _short_repr.maxstring, _short_repr.maxother = 3, 80, 80


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key '{key}'")
        elif not key:  # a cross-section check: its message names the keys; echoing the config helps nobody
            lines.append(e["msg"].removeprefix("Value error, "))
        else:
            got = _short_repr.repr(e.get("input"))  # bounded: an alias-built value may be huge
            lines.append(f"'{key}': {e['msg']} (got {got if len(got) <= 80 else got[:77] + '...'})")
    return f"Invalid config {source}: " + "; ".join(lines) + "."


def config_from_dict(data: dict, source: str = "(dict)") -> PlannerConfig:
    try:
        return PlannerConfig.model_validate(data)
    except ValidationError as err:
        raise UserError(
            _format_validation_error(err, source),
            "Fix or remove those keys; docs/config.md lists every key with its type and default.",
        ) from None


def presets() -> dict[str, str]:
    """Shipped configs selectable by name (`--preset NAME`): every YAML file beside this module, by stem.
    `demo` (the default of every verb) runs the real experiment on the pretrained base model; `quick` is
    the tiny from-scratch model, for a fast tour and the tests."""
    return {
        Path(entry.name).stem: entry.name
        for entry in sorted(resources.files("core").iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".yaml") and not entry.name.startswith(".")
    }


def preset_path(name: str) -> Path:
    """The file of a shipped preset; an unknown name is a user error listing the known ones."""
    known = presets()
    if name not in known:
        raise UserError(
            f"Unknown preset {name!r}.",
            f"Choose one of: {', '.join(sorted(known))} (or pass your own file with --config).",
        )
    return Path(str(resources.files("core").joinpath(known[name])))


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error: plain YAML keeps the
    last value, so the first one would be silently ignored."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may be overridden by design
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):  # config keys are strings; the schema names any other key
                continue
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, f"found key '{key}' twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_config(path: str | Path | None = None, preset: str | None = None) -> PlannerConfig:
    """Load and validate a config file, or a shipped preset by name; neither loads the demo preset."""
    if path is not None and preset is not None:
        raise UserError("Both a config file and a preset were given.", "Pass either --config FILE or --preset NAME.")
    if path is None:
        name = preset or DEMO_CONFIG_NAME.removesuffix(".yaml")
        text = preset_path(name).read_text(encoding="utf-8")
        source = f"(shipped {name} preset)"
    else:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"Config file {p} {not_a_file(p)}.", "Pass an existing YAML file with --config.")
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise UserError(f"Config {p} cannot be read as UTF-8 text: {err}.", "Save it as UTF-8 YAML.") from None
        source = str(p)
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no tag builds a Python object
    except yaml.YAMLError as err:
        raise UserError(f"Config {source} is not valid YAML: {err}".replace("\n", " ")) from None
    except RecursionError:
        raise UserError(f"Config {source} nests lists or mappings too deeply to read.", "Flatten it.") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"Config {source} must be a YAML mapping of keys to values, not {type(data).__name__}.")
    data.pop("planner_version", None)  # the stamp `write_resolved` adds: a resolved config is a valid input
    return config_from_dict(data, source)


def config_hash(cfg: PlannerConfig, *sections: str) -> str:
    """A stable hash of the named config sections (all when none), to tell whether outputs are up to date."""
    import hashlib

    dumped = cfg.model_dump(mode="json")
    if sections:
        dumped = {s: dumped[s] for s in sections}
    return hashlib.sha256(json.dumps(dumped, sort_keys=True).encode()).hexdigest()[:16]


def write_resolved(cfg: PlannerConfig, directory: str | Path) -> Path:
    """Write the fully resolved config (every default filled in) and the producing version into a directory."""
    body = {"planner_version": __version__, **cfg.model_dump(mode="json")}
    text = yaml.safe_dump(body, sort_keys=False, allow_unicode=True)
    return atomic_write_text(Path(directory) / RESOLVED_CONFIG_NAME, text)


def read_resolved(directory: str | Path) -> PlannerConfig:
    """Read back a resolved config written by `write_resolved` (drops the version stamp)."""
    path = Path(directory) / RESOLVED_CONFIG_NAME
    if not path.is_file():
        raise UserError(f"{path} is missing.", "Point at a directory written by planner (it holds resolved_config.yaml).")
    return load_config(path)
