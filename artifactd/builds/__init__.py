"""Artifact builds: the pipeline from a pushed image to its accelerated image,
the rules that trigger it, and the service that runs build tasks."""
