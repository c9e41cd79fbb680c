"""Executing build tasks: the in-process worker pool (the default)."""
