"""The adaptive sweep's own settings, kept out of the planner's config: an `adaptive:` YAML file (or dict)
read beside the planner's config (`python -m research.adaptive sweep --config planner.yaml --adaptive a.yaml`)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import Field, ValidationError, field_validator

from core.errors import UserError
from core.strict import Strict


class AdaptiveSettings(Strict):
    budget: float | None = Field(
        None, gt=0, description="Proxy compute in training tokens (finished + running + queued runs); default: "
        "what the grid would train.",
    )
    value_interval: float | None = Field(
        None, gt=0.0, description="Stop once the 90% posterior interval of what the plan could still gain (the "
        "best plan's value minus this plan's, in the objective's metric units) is this narrow.",
    )
    start_sizes: list[int] | None = Field(
        None, description="The sizes every language starts with; default: the two smallest positive sweep.sizes.",
    )
    ladder: list[int] | None = Field(
        None, description="The sizes a run may be chosen at; default: sweep.sizes plus 2× and 4× the largest.",
    )
    zero_shot: bool | None = Field(
        None, description="Also evaluate each language at 0 pairs in the start design; default: when sweep.sizes "
        "lists 0 or the model is pretrained.",
    )

    @field_validator("start_sizes", "ladder")
    @classmethod
    def _optional_sizes(cls, v: list[int] | None) -> list[int] | None:
        if v is None:
            return v
        if not v or any(s <= 0 for s in v):
            raise ValueError("must be a non-empty list of positive integers (the zero-shot point is zero_shot)")
        if len(set(v)) != len(v):
            raise ValueError("must not repeat")
        return sorted(v)


def adaptive_settings(data: dict | str | Path | None = None) -> AdaptiveSettings:
    """From a dict, a YAML file, or None (every default)."""
    if isinstance(data, (str, Path)):
        data = yaml.safe_load(Path(data).read_text(encoding="utf-8")) or {}
    try:
        return AdaptiveSettings.model_validate(data or {})
    except ValidationError as err:
        raise UserError(f"Invalid adaptive settings: {err}") from None
