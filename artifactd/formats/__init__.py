"""Layer formats: pure converters and readers over byte streams.

Nothing here logs, touches the network or a database; callers pass streams in
and get results (and :mod:`artifactd.errors` exceptions) back.
"""
