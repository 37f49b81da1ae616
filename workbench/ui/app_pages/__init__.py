"""Thin pages over workbench.services; each exposes ``render()``."""
