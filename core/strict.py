"""The base of every config section: unknown keys are errors (a typo must not be silently ignored)."""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def unique_seeds(v: list[int]) -> list[int]:
    """A field validator's body for a list of seeds: at least one, none repeated."""
    if not v:
        raise ValueError("list at least one seed")
    if len(set(v)) != len(v):
        raise ValueError("seeds must not repeat")
    return v
