"""artifactd: a container registry that turns pushed images into accelerated images."""

__version__ = "0.1.0"
