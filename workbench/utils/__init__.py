"""Tiny concerns every layer may use; nothing here imports the project above ``workbench.domain``."""
