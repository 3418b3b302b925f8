#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
run.py - the end-to-end suite of ingestd.

    python3 tests/e2e/run.py --bin build/ingestd [-k SUBSTRING] [--list]

Discovers every test_* function of tests/e2e/test_*.py, in file order.
A test whose first parameter is `d` gets a fresh, started harness.Daemon
(config overrides from @with_config); one whose first parameter is `bin`
gets the binary's path. @cases(table) runs a test once per row.

After each test every daemon it made must still be alive (unless the test
stopped it), must exit 0 on SIGTERM and must have logged no sanitizer
report. Each test is bounded by E2E_TEST_TIMEOUT seconds (default 120).

E2E_ONLY=substring (or -k) runs only the tests whose name, or whose
module's name (test_pipeline), contains it. E2E_MODULES=a,b (or
--modules) runs only those modules. INGESTD_TEST_BACKEND=postgresql runs
the daemons on PostgreSQL (harness.py). E2E_SELF_CONTAINED=1 (or
--self-contained; `make check`, the Debian package's test step) leaves out
the tests that need a program or service beyond the package's build
dependencies (harness.needs, a module's NEEDS: sshd, chromium, axe (node modules), wrk,
PostgreSQL, LibreOffice, reuse, lintian), and those that need root when not
run as root; it says how many it left out and why. Cleanups registered with
harness.at_end() (a server shared by a module's tests) run after the last
test.
With INGESTD_TEST_BACKEND=postgresql the tests marked harness.sqlite_only
(or a module's SQLITE_ONLY) are skipped, each with a "skip NAME: SQLite
only: WHY" line, and counted as skipped.
Last line: "e2e: N passed, N failed" (", N skipped" when some were); exit
status 1 when anything failed.
"""

import argparse
import importlib.util
import inspect
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, HERE)

import harness  # noqa: E402


class TestTimeout(Exception):
    pass


def discover():
    tests = []
    for fname in sorted(os.listdir(HERE)):
        if not (fname.startswith("test_") and fname.endswith(".py")):
            continue
        modname = fname[:-3]
        spec = importlib.util.spec_from_file_location(modname, os.path.join(HERE, fname))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        fns = [v for k, v in vars(mod).items()
               if k.startswith("test_") and inspect.isfunction(v) and v.__module__ == modname]
        fns.sort(key=lambda f: f.__code__.co_firstlineno)
        mod_needs = tuple(getattr(mod, "NEEDS", ()))
        assert not set(mod_needs) - set(harness.NEEDS_ALL), "%s: unknown NEEDS" % modname
        mod_sq = getattr(mod, "SQLITE_ONLY", None)
        for fn in fns:
            need = mod_needs + tuple(getattr(fn, "needs", ()))
            sq = getattr(fn, "sqlite_only", None) or mod_sq
            table = getattr(fn, "cases", None)
            if table is None:
                tests.append((fn.__name__, fn, (), modname, need, sq))
            else:
                per_case = getattr(fn, "case_needs", {})
                assert not set(per_case) - {row[0] for row in table}, "%s: needs of no case" % fn
                sq_case = getattr(fn, "case_sqlite_only", {})
                assert not set(sq_case) - {row[0] for row in table}, "%s: sqlite_only of no case" % fn
                for row in table:
                    tests.append(("%s[%s]" % (fn.__name__, row[0]), fn, tuple(row[1:]), modname,
                                  need + per_case.get(row[0], ()), sq or sq_case.get(row[0])))
    return tests


def left_out(need):
    """What keeps a test out of a self-contained run (empty: it runs)."""
    return [n for n in need if n != "root" or os.geteuid() != 0]


def on_alarm(signum, frame):
    raise TestTimeout("test exceeded its time limit")


def finish_daemons(passed_so_far):
    """Post-test checks on every daemon of the test; always cleans up.
    Returns (problems, log tails)."""
    problems, tails = [], []
    for d in harness.REGISTRY:
        try:
            if passed_so_far and d.proc is not None:
                if not d.stopped:
                    if not d.alive():
                        problems.append("daemon died (exit %s)" % d.proc.returncode)
                    else:
                        rc = d.stop(signal.SIGTERM, timeout=10)
                        if rc != 0:
                            problems.append("exit code %s after SIGTERM (expected 0)" % rc)
                rep = d.sanitizer_report()
                if rep:
                    problems.append("sanitizer: " + rep.strip())
                if d.torn:
                    p, data, err = d.torn[0]
                    problems.append("status file %r read while not valid JSON (%s): %r"
                                    % (p, err, data))
        except Exception as e:  # noqa: BLE001 - report, keep cleaning up
            problems.append("%s: %s" % (type(e).__name__, e))
        if problems or not passed_so_far:
            tails.append("  daemon log (%s):\n%s" % (d.dir, d.log_tail(25)))
        d.close()
    harness.REGISTRY.clear()
    return problems, tails


def run_one(name, fn, args, binpath, limit):
    params = list(inspect.signature(fn).parameters)
    err = None
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(limit))
    try:
        if params and params[0] == "d":
            d = harness.Daemon(binpath, **getattr(fn, "daemon_config", {}))
            fn(d, *args)
        elif params and params[0] == "bin":
            fn(binpath, *args)
        else:
            fn(*args)
    except AssertionError as e:
        err = str(e) or "assertion failed\n" + traceback.format_exc(limit=3)
    except Exception as e:  # noqa: BLE001
        err = "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc(limit=4))
    finally:
        signal.alarm(0)
    problems, tails = finish_daemons(err is None)
    if err is None and problems:
        err = "; ".join(problems)
    return err, tails


def main():
    ap = argparse.ArgumentParser(description="ingestd end-to-end tests")
    ap.add_argument("--bin", required=True, help="path to the ingestd binary")
    ap.add_argument("-k", default=os.environ.get("E2E_ONLY", ""),
                    help="run only tests whose name or module name contains this (env E2E_ONLY)")
    ap.add_argument("--modules", default=os.environ.get("E2E_MODULES", ""),
                    help="comma-separated module names to run (env E2E_MODULES)")
    ap.add_argument("--self-contained", action="store_true",
                    default=os.environ.get("E2E_SELF_CONTAINED", "") not in ("", "0"),
                    help="leave out tests that need more than the build dependencies "
                         "(env E2E_SELF_CONTAINED=1; make check)")
    ap.add_argument("--list", action="store_true", help="list test names and exit")
    a = ap.parse_args()

    mods = {m.strip() for m in a.modules.split(",") if m.strip()}
    tests = [t for t in discover() if (a.k in t[0] or a.k in t[3])
             and (not mods or t[3] in mods)]
    if a.self_contained:
        out = {}
        for t in tests:
            for n in left_out(t[4]):
                out[n] = out.get(n, 0) + 1
        kept = [t for t in tests if not left_out(t[4])]
        if len(kept) < len(tests):
            print("e2e: self-contained: %d of %d tests left out (they need %s)"
                  % (len(tests) - len(kept), len(tests),
                     ", ".join("%s: %d" % kv for kv in sorted(out.items()))), flush=True)
        tests = kept
    if a.list:
        for t in tests:
            print(t[0])
        return 0
    binpath = os.path.abspath(a.bin)
    if not (os.path.isfile(binpath) and os.access(binpath, os.X_OK)):
        print("FAIL setup: %s is not an executable file" % a.bin)
        print("e2e: 0 passed, 1 failed")
        return 1
    limit = float(os.environ.get("E2E_TEST_TIMEOUT", "120")) * harness.SCALE

    passed = failed = skipped = 0
    failures = []
    t_all = time.monotonic()
    try:
        for name, fn, args, _, _, sqlite_only in tests:
            if sqlite_only and harness.BACKEND == "postgresql":
                # a feature PostgreSQL refuses yet: said, not passed
                skipped += 1
                print("skip %s: SQLite only: %s" % (name, sqlite_only), flush=True)
                continue
            t0 = time.monotonic()
            err, tails = run_one(name, fn, args, binpath, limit)
            dt = time.monotonic() - t0
            if err is None:
                passed += 1
                print("ok   %s (%.1fs)" % (name, dt), flush=True)
            else:
                failed += 1
                failures.append(name)
                print("FAIL %s: %s" % (name, err.rstrip()), flush=True)
                for t in tails:
                    print(t, flush=True)
    finally:
        for p in harness.run_at_end():
            failed += 1
            failures.append("cleanup")
            print("FAIL cleanup: %s" % p, flush=True)
    print("e2e: %.1fs; failed: %s" % (time.monotonic() - t_all, ", ".join(failures) or "none"))
    print("e2e: %d passed, %d failed%s" % (passed, failed,
                                            ", %d skipped" % skipped if skipped else ""),
          flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
