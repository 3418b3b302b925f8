#!/bin/sh
# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
# Install the Debian packages ingestd needs to build and test, when missing.
# Does nothing when everything is present. Uses sudo when not root.
set -eu
PKGS="build-essential pkg-config libuv1-dev libsqlite3-dev libcsv-dev libyaml-dev
libssl-dev libcmocka-dev libmicrohttpd-dev libarchive-dev libpcre2-dev libcurl4-openssl-dev
libpq-dev sqlite3 python3"
[ "${INGESTD_TEST_DEPS:-}" ] && PKGS="$PKGS $INGESTD_TEST_DEPS"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
