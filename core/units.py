"""The budget's units, defined once; every printout of a budget names its unit through this module.

- `pairs`: translation pairs, one English sentence and its translation. Every pair costs 1.
- `tokens`: the tokens of a pair's text, **English source + target translation**, counted with the
  model's own tokenizer (`model.name`; for `tiny`, its trained BPE) without special tokens or the
  instruction prompt. This is what a proxy run records as `n_tokens` (`trainers.coit.pair_tokens`) and
  so what `tokens_per_pair` in fits.json and the limits table mean. A pair costs its tokens.
- `money`: a price per pair per language (`budget.languages.<code>.price_per_pair`, or the limits
  table's `price_per_pair` column) × pairs, in the currency `budget.currency` names. A pair costs its price.

`--unit` (`budget.unit`) always means the budget's unit. The fit's x axis (`planner fit --x`,
`fit.x`) is a different choice: the axis a curve is drawn on, not what the budget counts.
"""

from __future__ import annotations

import math

UNITS = ("pairs", "tokens", "money")
DEFAULT_CURRENCY = "USD"
# Printed after every token amount, so "tokens" never has to be guessed from context.
TOKENS_MEANING = "English + target, model tokenizer"
UNIT_MEANINGS = {
    "pairs": "translation pairs; every pair costs 1",
    "tokens": f"tokens of a pair's text ({TOKENS_MEANING}, no special tokens or prompt); a pair costs its tokens",
    "money": "price_per_pair × pairs; a pair costs its language's price",
}


def unit_name(unit: str, currency: str | None = None) -> str:
    """What an amount of `unit` is called: 'pairs', 'tokens', or the currency for money."""
    return (currency or DEFAULT_CURRENCY) if unit == "money" else unit


def per_unit(unit: str, currency: str | None = None) -> str:
    """One unit, for rates ('per pair', 'per token', 'per USD')."""
    return {"pairs": "pair", "tokens": "token"}.get(unit, unit_name(unit, currency))


def number(value: float, unit: str) -> str:
    """A bare amount: money with cents (a price per pair is often below one), counts whole."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:,.2f}" if unit == "money" else f"{value:,.0f}"


def amount(value: float, unit: str, currency: str | None = None, meaning: bool = True) -> str:
    """'16,000 tokens (English + target, model tokenizer)', '8,000 pairs', '1,234.50 USD'."""
    text = f"{number(value, unit)} {unit_name(unit, currency)}"
    return f"{text} ({TOKENS_MEANING})" if unit == "tokens" and meaning else text


def money(value: float, currency: str | None = None) -> str:
    return amount(value, "money", currency)
