"""The base of every config section: unknown keys are errors (a typo must not be silently ignored), and so
are NaN and infinite numbers (no setting means either)."""

import types
import typing

from pydantic import BaseModel, ConfigDict, model_validator

from core.errors import UserError

# numpy's legacy seeding (which torch/accelerate's set_seed calls) takes seeds 0 .. 2**32 - 1.
MAX_SEED = 2**32 - 1
# Posterior or bootstrap draws: 100 times the default; more only costs memory (1e11 asked for 745 GiB).
MAX_DRAWS = 100_000


def _takes_numbers_only(annotation) -> bool:
    """int, float, or an optional one: a field where YAML's true/false is a typo, not a number."""
    if annotation in (int, float):
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(args) and all(a in (int, float) for a in args)
    return False


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, data):
        # pydantic reads true as 1 in a number field; `batch_size: true` is a mistake, not a batch of one
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                key = field.alias or name
                if isinstance(data.get(key), bool) and _takes_numbers_only(field.annotation):
                    raise ValueError(f"{key} is {str(data[key]).lower()}, but it takes a number")
        return data


def unique_seeds(v: list[int]) -> list[int]:
    """A field validator's body for a list of seeds: at least one, none repeated, each 0 .. MAX_SEED."""
    if not v:
        raise ValueError("list at least one seed")
    if len(set(v)) != len(v):
        raise ValueError("seeds must not repeat")
    if any(not 0 <= s <= MAX_SEED for s in v):
        raise ValueError(f"seeds must be between 0 and {MAX_SEED} (2**32 - 1)")
    return v


def check_seed_flag(seed) -> None:
    """The same rule for a seed given on the command line (--seed): UserError outside 0 .. MAX_SEED."""
    if int(seed) != seed or not 0 <= seed <= MAX_SEED:
        raise UserError(f"--seed must be a whole number from 0 to {MAX_SEED} (2**32 - 1); got {seed!r}.",
                        "Pass another --seed.")
