"""eStargz: gzip'd tar layers with a TOC, readable one file at a time."""

from artifactd.formats.estargz.reader import (
    EStargzReader,
    FileRandomAccess,
    RandomAccess,
)
from artifactd.formats.estargz.toc import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_LEVEL,
    NO_PREFETCH_LANDMARK,
    PREFETCH_LANDMARK,
    TOC_NAME,
    TOCEntry,
)
from artifactd.formats.estargz.writer import BuildOptions, LayerResult, build_estargz

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_LEVEL",
    "NO_PREFETCH_LANDMARK",
    "PREFETCH_LANDMARK",
    "TOC_NAME",
    "BuildOptions",
    "EStargzReader",
    "FileRandomAccess",
    "LayerResult",
    "RandomAccess",
    "TOCEntry",
    "build_estargz",
]
