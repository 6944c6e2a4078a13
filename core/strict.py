"""The base of every config section: unknown keys are errors (a typo must not be silently ignored), and so
are NaN and infinite numbers (no setting means either)."""

from pydantic import BaseModel, ConfigDict

from core.errors import UserError

# numpy's legacy seeding (which torch/accelerate's set_seed calls) takes seeds 0 .. 2**32 - 1.
MAX_SEED = 2**32 - 1


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


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
