"""Base class for tamale's typed configuration objects.

Every parameter set that a widget, the CLI or a YAML file can fill (inference,
training, patch picking, ...) is a subclass of :class:`Config`: pydantic v2,
unknown keys rejected, values validated on assignment, one docstring per field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["Config", "ConfigError", "format_validation_error"]

C = TypeVar("C", bound="Config")


class ConfigError(ValueError):
    """A configuration could not be read or did not validate."""


def format_validation_error(exc: ValidationError, source: str = "") -> str:
    """One readable line per problem, naming the offending key."""
    where = f" in {source}" if source else ""
    lines = [f"invalid configuration{where}:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


class Config(BaseModel):
    """Typed, strict configuration (pydantic v2, ``extra="forbid"``)."""

    model_config = ConfigDict(
        extra="forbid",
        validate_assignment=True,
        use_attribute_docstrings=True,
        frozen=False,
    )

    @classmethod
    def from_mapping(cls: type[C], data: dict[str, Any], source: str = "") -> C:
        """Validate ``data``; raise :class:`ConfigError` naming bad keys."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, source)) from None

    @classmethod
    def from_yaml(cls: type[C], path: str | Path) -> C:
        """Read a YAML file with ``yaml.safe_load`` and validate it."""
        return cls.from_mapping(cls.yaml_mapping(path), source=str(path))

    @staticmethod
    def yaml_mapping(path: str | Path) -> dict[str, Any]:
        """The mapping in a YAML file (``yaml.safe_load``), not yet validated."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping of keys to values")
        return data

    def to_yaml(self, path: str | Path) -> None:
        """Write the configuration as YAML (JSON-compatible values)."""
        Path(path).write_text(
            yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False), encoding="utf-8"
        )
