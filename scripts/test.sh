#!/usr/bin/env bash
# Installs everything the test suite needs that is missing, then runs it.
#
#   scripts/test.sh [PYTEST_ARGS...]
#
# - Debian packages: skopeo, docker-registry (CNCF Distribution), debootstrap,
#   zstd, wrk, Go and the estargz library for the reference verifier;
# - a virtual environment in .venv with artifactd and its test extras;
# - the reference verifier (../shared/tools/estargz-ref/build.sh);
# - the image corpus (../shared/corpus/make-corpus.sh), built into
#   $OCI_CORPUS_DIR (default ~/.cache/oci-corpus), never into the repository.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
shared=${ARTIFACTD_SHARED_DIR:-$root/../shared}
cd "$root"

log() { echo "test.sh: $*" >&2; }

# 1. Debian packages (apt-get update only when something is missing).
need=()
command -v skopeo >/dev/null || need+=(skopeo)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v zstd >/dev/null || need+=(zstd)
command -v wrk >/dev/null || need+=(wrk)
command -v htpasswd >/dev/null || need+=(apache2-utils)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]}"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
  ${sudo[@]+"${sudo[@]}"} apt-get update -qq
  ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# 2. The package and its test extras, in a virtual environment.
venv=${ARTIFACTD_VENV:-$root/.venv}
if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import artifactd, pytest, hypothesis, alibabacloud_cr20181201' 2>/dev/null \
   || [ pyproject.toml -nt "$venv/.installed" ]; then
  log "installing artifactd[test]"
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  "$venv/bin/python" -m pip install -q -e ".[test]" >&2
  touch "$venv/.installed"
fi

# 3. The reference verifier.
ESTARGZ_REF=$(bash "$shared/tools/estargz-ref/build.sh" | tail -n 1)
export ESTARGZ_REF

# 4. The image corpus.
export OCI_CORPUS_DIR=${OCI_CORPUS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/oci-corpus}
bash "$shared/corpus/make-corpus.sh" "$OCI_CORPUS_DIR" >&2

# 5. The tests. pytest exits 5 when it collected nothing: that is a failure too.
export ARTIFACTD_SHARED_DIR=$shared
exec "$venv/bin/python" -m pytest "$@"
