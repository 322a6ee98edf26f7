"""tamale's napari plugin: thin docks over the ``tamale`` engine.

Nothing heavy is imported here; npe2 imports each dock's module when the user
opens it (see ``napari.yaml``).
"""

from tamale import __version__

__all__ = ["__version__"]
