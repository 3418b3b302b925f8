# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_cli.py - command line: --version, --help, bad options, --check-config.
"""

import os
import re
import subprocess

from harness import REPO, Daemon, cases, check, check_eq

RUN_TIMEOUT = 20  # seconds; a CLI call that hangs fails the test


def run(bin, *args):
    d = Daemon(bin, start=False)  # only for env and a scratch dir
    try:
        p = subprocess.run([bin, *args], cwd=d.dir, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=RUN_TIMEOUT, env=d.env())
    except subprocess.TimeoutExpired:
        raise AssertionError("%s %s did not exit within %ds" % (bin, " ".join(args), RUN_TIMEOUT))
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def test_version(bin):
    rc, out, err = run(bin, "--version")
    check_eq(rc, 0, "exit code (stderr: %r)" % err)
    with open(os.path.join(REPO, "VERSION")) as f:
        want = f.read().strip()
    check(re.fullmatch(r"ingestd \d+\.\d+\.\d+\n?", out), "stdout: %r" % out)
    check_eq(out.strip(), "ingestd " + want, "version line")


def test_help(bin):
    rc, out, err = run(bin, "--help")
    check_eq(rc, 0, "exit code")
    check("usage" in out.lower(), "usage on stdout: %r" % out)
    for opt in ("-c", "--config", "--check-config", "--version"):
        check(opt in out, "--help should mention %s: %r" % (opt, out))


BAD_OPTIONS = [
    ("unknown-long", ["--bogus"]),
    ("unknown-short", ["-Z"]),
    ("config-without-argument", ["-c"]),
    ("long-config-without-argument", ["--config"]),
    ("unknown-with-config", ["-c", "/nonexistent.yaml", "--frobnicate"]),
]


@cases(BAD_OPTIONS)
def test_bad_option(bin, args):
    rc, out, err = run(bin, *args)
    check_eq(rc, 64, "exit code (stderr: %r)" % err)
    check("usage" in err.lower(), "usage on stderr: %r" % err)


def _config_file(bin, text=None):
    d = Daemon(bin, start=False)
    if text is not None:
        d.write_config(text(d.config_text()) if callable(text) else text)
    return d.config_path


CHECK_FORMS = [
    ("check-first", lambda p: ["--check-config", "-c", p]),
    ("check-last", lambda p: ["-c", p, "--check-config"]),
    ("long-config", lambda p: ["--config", p, "--check-config"]),
]


@cases(CHECK_FORMS)
def test_check_config_good(bin, form):
    path = _config_file(bin)
    rc, out, err = run(bin, *form(path))
    check_eq(rc, 0, "exit code (stderr: %r)" % err)


def _sub(text, old, new):
    assert old in text, old
    return text.replace(old, new, 1)


def _line_of(text, needle):
    for i, l in enumerate(text.splitlines(), 1):
        if needle in l:
            return i
    raise AssertionError("test bug: %r not in config" % needle)


# (case id, mutation of the good config text, needles whose lines must be reported)
BAD_CONFIGS = [
    ("several-problems",
     lambda t: _sub(_sub(_sub(_sub(t, "workers: 2", "workers: 0"),
                              "settle_ms: 150", "settle_ms: soon"),
                         "batch_rows: 10000\n", "batch_rows: 10000\ncolour: blue\n"),
                    "type: integer", "type: integr"),
     ["workers: 0", "settle_ms: soon", "colour: blue", "type: integr"]),
    ("unknown-dataset-key", lambda t: _sub(t, "    fieldsMatch: equal\n", "    fieldsMatch: equal\n    colour: red\n"),
     ["colour: red"]),
    ("bad-fieldsMatch", lambda t: _sub(t, "fieldsMatch: equal", "fieldsMatch: sometimes"), ["sometimes"]),
    ("workers-not-a-number", lambda t: _sub(t, "workers: 2", "workers: 2x"), ["workers: 2x"]),
    ("batch-rows-negative", lambda t: _sub(t, "batch_rows: 10000", "batch_rows: -1"), ["batch_rows: -1"]),
    ("bad-listen-port", lambda t: re.sub(r"listen: 127\.0\.0\.1:\d+", "listen: 127.0.0.1:99999", t),
     ["listen: 127.0.0.1:99999"]),
    ("primary-key-not-a-field", lambda t: _sub(t, "primaryKey: [sku]", "primaryKey: [nope]"), ["primaryKey: [nope]"]),
    ("yaml-syntax", lambda t: _sub(t, "workers: 2", "workers: [2"), []),
    ("no-datasets", lambda t: t[:t.index("datasets:")], []),
    ("empty-file", lambda t: "", []),
]


@cases(BAD_CONFIGS)
def test_check_config_bad(bin, mutate, needles):
    path = _config_file(bin, mutate)
    with open(path) as f:
        text = f.read()
    rc, out, err = run(bin, "--check-config", "-c", path)
    check_eq(rc, 78, "exit code (stderr: %r)" % err)
    pat = re.compile(r"^%s:(\d+):(\d+): \S" % re.escape(path))
    lines = {int(m.group(1)) for m in map(pat.match, err.splitlines()) if m}
    check(lines, "no FILE:LINE:COL: lines on stderr: %r" % err)
    for n in needles:
        want = _line_of(text, n)
        check(want in lines, "problem at line %d (%r) not reported; stderr: %r" % (want, n, err))


def test_check_config_missing_file(bin):
    d = Daemon(bin, start=False)
    path = os.path.join(d.dir, "nope.yaml")
    rc, out, err = run(bin, "--check-config", "-c", path)
    check_eq(rc, 78, "exit code (stderr: %r)" % err)
    check(path in err, "stderr should name the file: %r" % err)


def test_run_missing_config(bin):
    d = Daemon(bin, start=False)
    path = os.path.join(d.dir, "nope.yaml")
    rc, out, err = run(bin, "-c", path)
    check(rc not in (0, None) and rc > 0, "exit code should be a failure, got %r (stderr: %r)" % (rc, err))
    check(path in err, "stderr should name the file: %r" % err)


def test_run_invalid_config(bin):
    path = _config_file(bin, lambda t: _sub(t, "workers: 2", "workers: 0"))
    rc, out, err = run(bin, "-c", path)
    check(rc > 0, "exit code should be a failure, got %r (stderr: %r)" % (rc, err))
    check(re.search(r"^%s:3:\d+: " % re.escape(path), err, re.M),
          "stderr should hold %s:3:COL: (workers): %r" % (path, err))
