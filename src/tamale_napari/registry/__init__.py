"""Docks of the model registry: register, model info, export / import, archive / hide.

Each dock is a thin layer over :mod:`tamale.registry`; every model list in
every dock follows the registry through :func:`tamale_napari._model_choice.model_combo`.
"""
