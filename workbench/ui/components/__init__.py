"""Custom Streamlit components of the workbench (Components v2, no build step)."""
