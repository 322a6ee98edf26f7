"""Widget tests run in a real napari viewer on a real (Xvfb) display.

pytest-xvfb starts Xvfb for the session when it is installed. Without a
display these tests are skipped locally but FAIL when the ``CI`` environment
variable is set, so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest


def _display_problem() -> str | None:
    if os.environ.get("QT_QPA_PLATFORM", "") == "offscreen":
        return "QT_QPA_PLATFORM=offscreen has no OpenGL; run the widget tests under Xvfb"
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        return "no display: install Xvfb (apt-get install xvfb) so pytest-xvfb can start one"
    return None


@pytest.fixture(autouse=True)
def _require_display() -> None:
    problem = _display_problem()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"widget test cannot run in CI: {problem}")
    pytest.skip(problem)


TUTORIALS = Path(__file__).resolve().parents[2] / "docs" / "tutorials"


@pytest.fixture
def tutorial_code():
    """``tutorial_code(name, replacements={})``: the Python blocks of ``docs/tutorials/NAME``
    joined in order, each ``old -> new`` replacement made where written (and required to be
    there, so a test notices when the tutorial changes)."""

    def code(name: str, replacements: dict[str, str] | None = None) -> str:
        text = (TUTORIALS / name).read_text()
        joined = "\n".join(re.findall(r"```python\n(.*?)```", text, flags=re.S))
        for old, new in (replacements or {}).items():
            assert old in joined, f"{name} no longer has {old!r}"
            joined = joined.replace(old, new)
        return joined

    return code
