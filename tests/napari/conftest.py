"""Widget tests run in a real napari viewer on a real (Xvfb) display.

pytest-xvfb starts Xvfb for the session when it is installed. Without a
display these tests are skipped locally but FAIL when the ``CI`` environment
variable is set, so CI can never pass by skipping them.
"""

from __future__ import annotations

import os

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
