"""The `tracking` section of the config schema (core.config): where each training run is also reported
(MLflow, TensorBoard or Weights & Biases), besides the run directory's own files.

Tracking is a view of the runs, not part of them: no key here enters a run's identity
(`core.config.run_settings`) or any stage's hash, so turning it on or off never retrains a finished run.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from core.strict import Strict

TRACKING_BACKENDS = ("none", "mlflow", "tensorboard", "wandb")


class TrackingConfig(Strict):
    backend: Literal["none", "mlflow", "tensorboard", "wandb"] = Field(
        "none", description="Where every proxy and final run is also reported: none, mlflow, tensorboard or wandb "
        "(each needs its library: pip install 'coit-planner[tracking]' for mlflow and tensorboard, "
        "'coit-planner[wandb]' for wandb). A backend's failure is a warning; "
        "the run's own files are always written.",
    )
    uri: str | None = Field(
        None, description="mlflow only: the MLflow tracking URI (a server's http(s) URL or a database URL). "
        "Default: a SQLite store in the output directory, sqlite:///<output_dir>/mlflow.db.",
    )
    dir: str | None = Field(
        None, description="tensorboard: the log directory (default <output_dir>/tensorboard, one subfolder per "
        "run); wandb: where W&B keeps its run files (default <output_dir>/wandb).",
    )
    project: str | None = Field(
        None, description="The MLflow experiment or W&B project the runs are reported under (default: the "
        "config's `experiment`).",
    )
    mode: Literal["offline", "online"] = Field(
        "offline", description="wandb only: offline (default) writes the runs locally, no account needed, "
        "uploadable later with `wandb sync`; online sends them to the W&B server (needs `wandb login`).",
    )

    @model_validator(mode="after")
    def _keys_fit_backend(self) -> "TrackingConfig":
        # A key the chosen backend ignores is almost always a mix-up (e.g. an MLflow URI under tensorboard).
        if self.uri is not None and self.backend != "mlflow":
            raise ValueError(f"tracking.uri is MLflow's tracking URI, but tracking.backend is '{self.backend}' "
                             "(for tensorboard or wandb set tracking.dir)")
        if self.dir is not None and self.backend not in ("tensorboard", "wandb"):
            raise ValueError(f"tracking.dir is a tensorboard or wandb directory, but tracking.backend is "
                             f"'{self.backend}'" + (" (MLflow takes tracking.uri)" if self.backend == "mlflow" else ""))
        # Not "mode was given": a resolved config (every default written out) must load back unchanged.
        if self.mode != "offline" and self.backend != "wandb":
            raise ValueError(f"tracking.mode is W&B's offline/online switch, but tracking.backend is '{self.backend}'")
        return self
