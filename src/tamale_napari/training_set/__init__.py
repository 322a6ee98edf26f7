"""Docks for building a training set: "Pick training patches" and "Store training set"."""
