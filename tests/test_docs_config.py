"""docs/config.md documents every config key (the schema and the reference must not drift apart)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from core.config import PlannerConfig

DOC = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text(encoding="utf-8")


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        out.append(prefix + name)
        ann = field.annotation
        for sub in getattr(ann, "__args__", ()) + (ann,):
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                out += _keys(sub, prefix + name + ".")
    return out


def test_every_config_key_has_a_row_in_the_reference():
    missing = [key for key in _keys(PlannerConfig) if f"| `{key.rsplit('.', 1)[-1]}` |" not in DOC]
    assert not missing, f"docs/config.md lacks rows for {missing}"
