from __future__ import annotations

from pathlib import Path

import pytest

from tamale import _paths
from tamale.config import Config, ConfigError


class Example(Config):
    threshold: float = 0.5
    """A threshold."""
    name: str = "x"
    """A name."""


def test_unknown_keys_and_wrong_types_name_the_key(tmp_path: Path):
    with pytest.raises(ConfigError, match="thresold: unknown key"):
        Example.from_mapping({"thresold": 0.2})
    f = tmp_path / "c.yaml"
    f.write_text("threshold: high\n")
    with pytest.raises(ConfigError, match="threshold"):
        Example.from_yaml(f)


def test_yaml_round_trip(tmp_path: Path):
    cfg = Example(threshold=0.25, name="mito")
    cfg.to_yaml(tmp_path / "c.yaml")
    assert Example.from_yaml(tmp_path / "c.yaml") == cfg


def test_yaml_must_be_a_mapping_and_is_loaded_safely(tmp_path: Path):
    f = tmp_path / "c.yaml"
    f.write_text("!!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Example.from_yaml(f)
    f.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        Example.from_yaml(f)


def test_field_docstrings_become_descriptions():
    assert Example.model_fields["threshold"].description == "A threshold."


def test_tamale_home_is_read_on_every_call(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("TAMALE_HOME", str(tmp_path / "a"))
    assert _paths.models_dir() == tmp_path / "a" / "models"
    monkeypatch.setenv("TAMALE_HOME", str(tmp_path / "b"))
    assert _paths.models_dir() == tmp_path / "b" / "models"
    assert _paths.downloads_dir() == tmp_path / "b" / "cache" / "downloads"
    monkeypatch.delenv("TAMALE_HOME")
    assert "tamale" in str(_paths.user_data_dir())
