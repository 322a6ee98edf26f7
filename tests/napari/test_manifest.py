from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from npe2 import PluginManifest

ROOT = Path(__file__).resolve().parents[2]


def test_manifest_loads_from_the_installed_distribution_and_imports():
    manifest = PluginManifest.from_distribution("tamale")
    assert manifest.name == "tamale"
    manifest.validate_imports()
    keys = {s.key for s in manifest.contributions.sample_data}
    assert {"synthetic-2d", "synthetic-3d"} <= keys


def test_root_manifest_is_a_symlink_to_the_packaged_file():
    root = ROOT / "napari.yaml"
    assert root.is_symlink()
    assert root.read_text() == files("tamale_napari").joinpath("napari.yaml").read_text()


def test_every_widget_has_a_command_and_a_title():
    manifest = PluginManifest.from_distribution("tamale")
    commands = {c.id: c for c in manifest.contributions.commands}
    for widget in manifest.contributions.widgets or []:
        assert widget.command in commands
        assert widget.display_name
