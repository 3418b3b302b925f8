#!/bin/sh
# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
# Install what the test suite needs beyond the build, when missing:
# tests/e2e/test_sftp.py runs a real OpenSSH server and its clients (scp,
# sftp, rsync over ssh); tests/e2e/test_systemd.py runs systemd-analyze,
# systemd-sysusers and systemd-tmpfiles (systemd), mandoc and strace;
# tests/e2e/test_browser.py runs chromium headless; bench/http.sh runs wrk;
# tests/e2e/test_real_files.py has files written by a real PostgreSQL 15
# server (COPY ... TO), LibreOffice headless (soffice --convert-to) and
# compressed by zstd, xz, bzip2 and zip; the PostgreSQL backend's runs
# of the suites (INGESTD_TEST_BACKEND=postgresql) read the database
# through python3-psycopg2; tests/e2e/test_package.py runs
# reuse lint, builds the Debian package (dpkg-dev, debhelper, fakeroot) and
# checks it with lintian and hardening-check (devscripts), and runs git;
# tests/e2e/test_pages.py drives chromium with playwright-core and checks
# every page with axe-core (node; the two npm modules, pinned, go into
# tests/e2e/node_modules, which git ignores).
# make fuzz builds tests/fuzz/ with clang's libFuzzer (libclang-rt-14-dev, a
# dependency of clang on Debian 12, named so that a missing one is installed).
# tests/e2e/test_metrics.py runs promtool check metrics (prometheus).
# Adds to INGESTD_TEST_DEPS and runs deps.sh, then npm when the modules
# are missing.
set -eu
INGESTD_TEST_DEPS="${INGESTD_TEST_DEPS:-} openssh-server openssh-client rsync systemd mandoc strace chromium wrk clang libclang-rt-14-dev clang-tools cppcheck clang-format postgresql python3-psycopg2 zstd xz-utils bzip2 zip libreoffice-calc-nogui reuse dpkg-dev debhelper fakeroot lintian devscripts git prometheus"
# Debian's nodejs and npm, unless a node with its npm is already there
command -v npm >/dev/null 2>&1 || INGESTD_TEST_DEPS="$INGESTD_TEST_DEPS nodejs npm"
export INGESTD_TEST_DEPS
"$(dirname "$0")/deps.sh"
E2E="$(dirname "$0")/../tests/e2e"
AXE_VERSION=4.14.1
PLAYWRIGHT_VERSION=1.65.1
have() { grep -qs "\"version\": \"$2\"" "$E2E/node_modules/$1/package.json"; }
if ! have axe-core "$AXE_VERSION" || ! have playwright-core "$PLAYWRIGHT_VERSION"; then
	echo "test-deps: npm install axe-core@$AXE_VERSION playwright-core@$PLAYWRIGHT_VERSION" >&2
	(cd "$E2E" && npm install --no-save --no-audit --no-fund --prefix . \
		"axe-core@$AXE_VERSION" "playwright-core@$PLAYWRIGHT_VERSION")
fi
