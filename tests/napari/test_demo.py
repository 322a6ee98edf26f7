from __future__ import annotations

from tamale_napari._demo import dock_names, open_demo


def test_demo_opens_the_sample_and_every_dock(make_napari_viewer):
    viewer = make_napari_viewer()
    open_demo("synthetic-3d", viewer=viewer)
    assert [layer.name for layer in viewer.layers] == [
        "synthetic EM 3D",
        "synthetic EM 3D ground truth",
    ]
    docked = (
        set(viewer.window.dock_widgets.keys()) if hasattr(viewer.window, "dock_widgets") else set()
    )
    for name in dock_names():
        assert any(name in key for key in docked), f"dock {name!r} missing"
