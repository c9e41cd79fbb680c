"""The embedded OCI registry (server, storage, auth, events, garbage collection)
and a client for any OCI registry. Imports only :mod:`artifactd.oci` of ours."""
