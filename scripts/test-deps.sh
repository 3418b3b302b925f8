#!/bin/sh
# Install what the test suite needs beyond the build, when missing:
# tests/e2e/test_sftp.py runs a real OpenSSH server and its clients (scp,
# sftp, rsync over ssh); tests/e2e/test_systemd.py runs systemd-analyze,
# systemd-sysusers and systemd-tmpfiles (systemd), mandoc and strace;
# tests/e2e/test_browser.py runs chromium headless; bench/http.sh runs wrk;
# tests/e2e/test_real_files.py has files written by a real PostgreSQL 15
# server (COPY ... TO), LibreOffice headless (soffice --convert-to) and
# compressed by zstd, xz, bzip2 and zip; the PostgreSQL backend's runs of the
# suites (INGESTD_TEST_BACKEND=postgresql) read the database through
# python3-psycopg2.
# Adds to INGESTD_TEST_DEPS and runs deps.sh.
set -eu
INGESTD_TEST_DEPS="${INGESTD_TEST_DEPS:-} openssh-server openssh-client rsync systemd mandoc strace chromium wrk clang clang-tools cppcheck clang-format postgresql python3-psycopg2 zstd xz-utils bzip2 zip libreoffice-calc-nogui"
export INGESTD_TEST_DEPS
exec "$(dirname "$0")/deps.sh"
