"""The `sweep` section of the config schema (core.config): the grid of proxy runs and the mixture proxy
runs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt, field_validator, model_validator

from core.strict import Strict, unique_seeds


class ClusterConfig(Strict):
    """`planner sweep --submit slurm|local`: the jobs a sweep is submitted as (submitit; docs/cluster.md)."""

    jobs: int = Field(
        1, ge=1, description="Jobs to submit; each runs the ordinary sweep worker loop against the sweep's storage "
        "and they share its points (one job per worker when gpus_per_job equals gpus_per_run).",
    )
    gpus_per_job: int | None = Field(
        None, ge=0, description="GPUs each job asks for (Slurm gpus_per_node); the job runs one local worker per "
        "sweep.gpus_per_run of them. Default: sweep.gpus_per_run (one worker per job); 0: CPU-only jobs, one worker "
        "each.",
    )
    cpus_per_job: int | None = Field(
        None, ge=1, description="CPU cores each job asks for (Slurm cpus_per_task); its workers split them into torch "
        "threads. Default: the cluster's default.",
    )
    mem_gb: float | None = Field(None, gt=0, description="Memory each job asks for, in GB; default: the cluster's.")
    time_minutes: int = Field(
        240, ge=1, description="Time limit of each job in minutes. A job that reaches it stops its workers (their "
        "runs are retried) and is requeued, up to 3 times.",
    )
    partition: str | None = Field(None, description="Slurm partition (sbatch --partition); default: the cluster's.")
    account: str | None = Field(None, description="Slurm account to charge (sbatch --account); default: yours.")
    folder: str | None = Field(
        None, description="Where submitit writes each job's script, pickles and logs (on a filesystem the nodes "
        "share, for Slurm). Default: <output_dir>/jobs.",
    )
    slurm_params: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Further sbatch options, name → value without the leading dashes (e.g. "
        "qos: high, constraint: a100); passed to submitit's slurm_additional_parameters.",
    )
    setup: list[str] = Field(
        default_factory=list, description="Shell lines each Slurm job runs before the sweep (e.g. 'module load "
        "cuda/12.1'); the job's Python is the one `planner sweep --submit` runs in.",
    )


# The adaptive sweep's keys: it moved out of the planner into research code (docs/adaptive-sweep.md).
ADAPTIVE_KEYS = ("strategy", "budget", "stop_when", "start_sizes", "ladder", "zero_shot")


class SweepConfig(Strict):
    @model_validator(mode="before")
    @classmethod
    def _adaptive_moved_out(cls, data):
        # A config written for the adaptive sweep must not run the grid silently; "unknown key" would not say why.
        given = [k for k in ADAPTIVE_KEYS if isinstance(data, dict) and k in data
                 and not (k == "strategy" and data[k] == "grid")]
        if given:
            raise ValueError(f"sweep.{', sweep.'.join(given)}: the adaptive sweep is research code now, not part of "
                             "the planner; remove these keys to run the grid, or run it as docs/adaptive-sweep.md "
                             "describes")
        if isinstance(data, dict) and data.get("strategy") == "grid":
            data = {k: v for k, v in data.items() if k != "strategy"}  # the only strategy there is
        return data

    sizes: list[int] = Field(
        default_factory=lambda: [250, 500, 1000, 2000],
        description="Training pairs per proxy run; 0 is the zero-shot point (the base model evaluated untrained).",
    )
    seeds: list[int] = Field(default_factory=lambda: [0])
    mixtures: list[int] = Field(
        default_factory=list, description="Mixture proxy runs: for each size N, one model on the uniform mixture of "
        "N pairs per language, every language scored inside it (runs.csv mixture rows); `planner fit` fits each "
        "language's curve inside mixtures from them (two or more sizes), on which `planner allocate` makes and "
        "predicts the plan, or with one size τ and a transfer-aware plan beside it (docs/transfer.md).",
    )
    leave_one_out: bool = Field(
        False, description="With mixtures: also one run per language without it, at the largest mixture size "
        "(3+ languages): the other languages' data vary while a language's own stay fixed, which separates "
        "transfer from the curve.",
    )
    leave_one_out_size: int | None = Field(
        None, description="With leave_one_out: the mixture size (one of sweep.mixtures) its runs use; default the "
        "largest. A larger mixture size added later to measure more own data inside mixtures then keeps the "
        "leave-one-out runs already trained instead of training them again at the new size.",
    )
    probes: list[dict[str, int]] = Field(
        default_factory=list, description="Mixture proxy runs at chosen pairs per language, each a mapping of every "
        "configured language to its pairs (0: trained without it, still scored), e.g. the transfer-aware plan's "
        "allocation: the uniform mixtures of sweep.mixtures grow every language's data together, and a plan that "
        "gives one language most of the budget is off that line (docs/transfer.md). Fitted like any mixture run; "
        "runs.csv names one `probe-<code><pairs>+…`.",
    )
    storage: str | None = Field(
        None, description="optuna storage: SQLAlchemy URL or journal file; default sqlite in output_dir."
    )
    workers: int | None = Field(
        None, ge=1, description="Local worker processes (--workers overrides); default: one per slice of "
        "sweep.devices (len(devices) // gpus_per_run) where GPUs are used, else 1.",
    )
    devices: Literal["auto"] | list[StrictInt] = Field(
        "auto", description="GPU ids the local workers share out, counted as this process sees them (under an "
        "inherited CUDA_VISIBLE_DEVICES, its entries); 'auto': every GPU torch sees, none on a machine without "
        "one (then the runs use the CPU).",
    )
    gpus_per_run: int = Field(
        1, ge=1, description="GPUs each local worker owns: worker k runs with CUDA_VISIBLE_DEVICES set to "
        "devices[k·g:(k+1)·g]. One proxy run launched over several GPUs is not implemented yet.",
    )
    max_failures: int | None = Field(None, ge=1)
    cluster: ClusterConfig = Field(
        default_factory=ClusterConfig, description="`planner sweep --submit slurm|local`: the jobs the sweep is "
        "submitted as, and what each asks the scheduler for (docs/cluster.md).",
    )
    heartbeat_seconds: int = Field(30, ge=1, description="How often a running proxy run records that it is alive "
                                   "(optuna's heartbeat, on database storages; a journal has none: docs/sweep.md).")
    grace_seconds: int | None = Field(
        None, ge=1, description="A run silent this long is declared lost and retried; default 4 × heartbeat_seconds."
    )

    @field_validator("sizes")
    @classmethod
    def _sizes_positive_unique(cls, v: list[int]) -> list[int]:
        # 0 is the zero-shot point of a pretrained model (evaluation only); a curve still needs trained sizes.
        if not v or any(s < 0 for s in v) or not any(s > 0 for s in v):
            raise ValueError("sizes must be a list of integers ≥ 0 (0 = the zero-shot point) with at least one positive")
        if len(set(v)) != len(v):
            raise ValueError("sizes must not repeat")
        return sorted(v)

    @field_validator("seeds")
    @classmethod
    def _seeds_unique(cls, v: list[int]) -> list[int]:
        return unique_seeds(v)

    @field_validator("mixtures")
    @classmethod
    def _mixture_sizes(cls, v: list[int]) -> list[int]:
        if any(s <= 0 for s in v):
            raise ValueError("must be positive integers (pairs per language of a uniform mixture run)")
        if len(set(v)) != len(v):
            raise ValueError("must not repeat")
        return sorted(v)

    @field_validator("probes")
    @classmethod
    def _probe_pairs(cls, v: list[dict[str, int]]) -> list[dict[str, int]]:
        for i, probe in enumerate(v, 1):
            if any(n < 0 for n in probe.values()) or not any(n > 0 for n in probe.values()):
                raise ValueError(f"probe {i} ({probe}): pairs per language are integers ≥ 0, at least one positive")
        if len({tuple(sorted(p.items())) for p in v}) != len(v):
            raise ValueError("must not repeat")
        return [dict(sorted(p.items())) for p in v]

    @model_validator(mode="after")
    def _leave_one_out_needs_mixtures(self) -> "SweepConfig":
        if self.leave_one_out and not self.mixtures:
            raise ValueError("sweep.leave_one_out needs sweep.mixtures (it runs at the largest mixture size)")
        if self.leave_one_out_size is not None:
            if not self.leave_one_out:
                raise ValueError("sweep.leave_one_out_size needs sweep.leave_one_out: true")
            if self.leave_one_out_size not in self.mixtures:
                raise ValueError(f"sweep.leave_one_out_size is {self.leave_one_out_size}, not one of sweep.mixtures "
                                 f"{self.mixtures}")
        return self

    @property
    def has_mixture_runs(self) -> bool:
        """Whether the sweep trains mixture proxy runs (uniform ones or probes)."""
        return bool(self.mixtures or self.probes)

    @property
    def largest_pairs(self) -> int:
        """The most pairs one proxy run takes from a language: a per-language run's largest size, a uniform
        mixture's share, or a probe's largest."""
        return max([*self.sizes, *self.mixtures, *(n for p in self.probes for n in p.values())])

    @property
    def leave_one_out_pairs(self) -> int | None:
        """Pairs per language of the leave-one-out runs (None without them)."""
        if not (self.leave_one_out and self.mixtures):
            return None
        return self.leave_one_out_size or max(self.mixtures)

    @field_validator("devices", mode="before")
    @classmethod
    def _devices_auto_or_ids(cls, v):
        # One message for both shapes; the union's own errors would list each member's complaint.
        if v == "auto":
            return v
        if not isinstance(v, list) or any(isinstance(d, bool) or not isinstance(d, int) for d in v):
            raise ValueError("must be 'auto' or a list of GPU ids (integers ≥ 0)")
        if any(d < 0 for d in v):
            raise ValueError("GPU ids are integers ≥ 0")
        if len(set(v)) != len(v):
            raise ValueError("GPU ids must not repeat (two workers would share a GPU)")
        return v

    @model_validator(mode="after")
    def _devices_hold_a_run(self) -> "SweepConfig":
        if self.devices != "auto" and len(self.devices) < self.gpus_per_run:
            raise ValueError(f"sweep.devices lists {len(self.devices)} GPU(s), fewer than sweep.gpus_per_run "
                             f"({self.gpus_per_run}) that one run needs")
        return self

    @model_validator(mode="after")
    def _jobs_hold_whole_runs(self) -> "SweepConfig":
        g = self.cluster.gpus_per_job
        if g and g % self.gpus_per_run:
            raise ValueError(f"sweep.cluster.gpus_per_job ({g}) must be a multiple of sweep.gpus_per_run "
                             f"({self.gpus_per_run}): each of a job's workers owns gpus_per_run GPUs")
        return self

    @model_validator(mode="after")
    def _grace_exceeds_heartbeat(self) -> "SweepConfig":
        if self.grace_seconds is not None and self.grace_seconds <= self.heartbeat_seconds:
            raise ValueError(
                f"grace_seconds ({self.grace_seconds}) must exceed heartbeat_seconds ({self.heartbeat_seconds})"
            )
        return self

