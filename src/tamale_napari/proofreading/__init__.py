"""Proofreading docks: thin adapters from layers and controls to :mod:`tamale.proofread`."""
