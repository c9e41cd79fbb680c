"""Subcommands of the ``artifactd`` CLI, one module each (see :mod:`artifactd.cli`)."""
