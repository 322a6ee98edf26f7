"""The engine must import without napari, Qt or the plugin (DESIGN §2)."""

from __future__ import annotations

import json
import subprocess
import sys

GUI_MODULES = [
    "napari",
    "qtpy",
    "PyQt5",
    "PyQt6",
    "PySide2",
    "PySide6",
    "magicgui",
    "superqt",
    "vispy",
    "tamale_napari",
]

SCRIPT = """
import importlib, json, pkgutil, sys
import tamale
names = [m.name for m in pkgutil.walk_packages(tamale.__path__, "tamale.")]
for name in names:
    if name.endswith("__main__"):
        continue
    importlib.import_module(name)
gui = [m for m in sys.modules if m.split(".")[0] in {gui!r}]
print(json.dumps({{"modules": names, "gui": gui}}))
"""


def test_importing_every_engine_module_loads_no_gui_package():
    code = SCRIPT.format(gui=set(GUI_MODULES))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "tamale.cli" in result["modules"]
    assert "tamale.synthetic" in result["modules"]
    assert result["gui"] == []


def test_import_tamale_is_cheap():
    code = "import sys, tamale; print(sorted(m for m in ('torch', 'zarr', 'dask', 'skimage') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
