#!/usr/bin/env bash
# Install Jane Austen's six novels (Debian's r-cran-janeaustenr) without installing R.
#
# `apt-get install r-cran-janeaustenr` would pull in all of R; we only need the package's data
# files (R lazy-load database data/Rdata.rdb + .rdx), which compress/data/austen.py reads in pure
# Python. So: download the .deb and unpack it with `dpkg -x` under a fixed prefix.
# Idempotent: exits 0 at once when the data is already there.
set -euo pipefail

PREFIX="${AUSTEN_PREFIX:-/opt/edge-compress-data/janeaustenr}"
PKGDIR="$PREFIX/usr/lib/R/site-library/janeaustenr"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

if [ -f "$PKGDIR/data/Rdata.rdb" ] && [ -f "$PKGDIR/data/Rdata.rdx" ]; then
  echo "janeaustenr already installed at $PKGDIR"
  exit 0
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"  # apt-get download writes into the current folder

if ! apt-get download -qq r-cran-janeaustenr 2>/dev/null; then
  $SUDO apt-get update -qq
  apt-get download -qq r-cran-janeaustenr
fi
DEB="$(ls "$TMP"/r-cran-janeaustenr_*.deb)"

# Unpack into a sibling folder first, then move it into place, so a killed run never leaves a
# half-unpacked PREFIX that the check above would take for complete.
$SUDO mkdir -p "$(dirname "$PREFIX")"
STAGE="$PREFIX.partial.$$"
$SUDO rm -rf "$STAGE"
$SUDO dpkg -x "$DEB" "$STAGE"
$SUDO rm -rf "$PREFIX"
$SUDO mv "$STAGE" "$PREFIX"

[ -f "$PKGDIR/data/Rdata.rdb" ] || { echo "error: $PKGDIR/data/Rdata.rdb not found after unpacking $DEB" >&2; exit 1; }
echo "janeaustenr installed at $PKGDIR"
