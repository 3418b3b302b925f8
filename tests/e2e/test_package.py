# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_package.py - the licence, the release tarball and the Debian package
(issue 15).

`reuse lint` over the checkout; `make dist` holds exactly the committed
tree; the package built from a temporary copy of the work tree
(dpkg-buildpackage -us -uc, source and binary, with DEB_BUILD_OPTIONS=nocheck:
its test step is `make check`, which this suite already is) passes lintian
with no error or warning and hardening-check, installs the daemon in
/usr/sbin and the units where Debian 12 keeps them, creates the users before
the drop tree, and neither enables nor starts the service. Also the
selection `make check` runs (tests/e2e/run.py --self-contained).

The tools come from scripts/test-deps.sh (reuse, debhelper, lintian,
devscripts, fakeroot); a missing one fails the test, never skips it.
"""

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

from harness import REPO, SCALE, check, check_eq, needs


def tool(name):
    path = shutil.which(name)
    check(path is not None, "%s missing: run scripts/test-deps.sh" % name)
    return path


def run(argv, cwd=REPO, env=None, timeout=120):
    p = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout * SCALE)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def clean_env():
    return {k: v for k, v in os.environ.items()
            if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}


def version():
    with open(os.path.join(REPO, "VERSION")) as f:
        return f.read().strip()


@needs("reuse", "git")
def test_reuse_lint(bin):
    rc, out = run([tool("reuse"), "lint"])
    check(rc == 0 and "Congratulations" in out, "reuse lint (exit %d):\n%s" % (rc, out))


@needs("git")
def test_dist_is_the_committed_tree(bin):
    tmp = tempfile.mkdtemp(prefix="ingestd-dist-")
    try:
        rc, out = run(["make", "--no-print-directory", "dist", "DISTDIR=" + tmp], env=clean_env())
        check_eq(rc, 0, "make dist:\n" + out)
        name = "ingestd-%s" % version()
        path = os.path.join(tmp, name + ".tar.gz")
        check(os.path.isfile(path), "no %s in %r" % (path, os.listdir(tmp)))
        rc, listing = run(["git", "ls-tree", "-r", "--name-only", "HEAD"])
        check_eq(rc, 0, "git ls-tree")
        with tarfile.open(path) as t:
            members = sorted(m.name for m in t.getmembers() if m.isfile() or m.issym())
            got_version = t.extractfile(name + "/VERSION").read().decode().strip()
        check_eq(members, sorted(name + "/" + f for f in listing.split("\n") if f),
                 "files of the tarball")
        check_eq(got_version, version(), "VERSION in the tarball")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _listed(extra):
    env = clean_env()
    env.pop("E2E_SELF_CONTAINED", None)
    env.pop("E2E_ONLY", None)
    rc, out = run([sys.executable, os.path.join(REPO, "tests", "e2e", "run.py"), "--bin",
                   "/bin/true", "--list"] + extra, env=env)
    check_eq(rc, 0, "run.py --list:\n" + out)
    return [l for l in out.splitlines() if not l.startswith("e2e: ")]


def test_self_contained_selection(bin):
    """make check leaves out exactly the tests that need what the package's
    build dependencies do not give: sshd, chromium, PostgreSQL, LibreOffice,
    reuse, lintian, promtool, node with axe-core, a git checkout (and root,
    when not root)."""
    every, kept = _listed([]), _listed(["--self-contained"])
    check(set(kept) < set(every), "the selection is not a strict subset")
    out = set(every) - set(kept)
    whole = set()  # modules left out whole (NEEDS)
    for mod in ("test_sftp.py", "test_browser.py", "test_pages.py"):
        with open(os.path.join(REPO, "tests", "e2e", mod)) as f:
            names = set(re.findall(r"^def (test_\w+)", f.read(), re.M))
        check(names, "no test found in %s" % mod)
        whole |= names
    for name in every:
        base = name.split("[")[0]
        want_out = (base in whole or base.startswith(("test_postgres_", "test_libreoffice_",
                                                      "test_workbook_rejected"))
                    or base in ("test_deploy_doc_sshd_block", "test_reuse_lint",
                                "test_partners_sshd_chroot",
                                "test_debian_package", "test_dist_is_the_committed_tree",
                                "test_metrics_every_state_promtool"))
        if os.geteuid() != 0 and (base in ("test_installed_layout_restart_rebuilds_drop_tree",
                                           "test_no_lease_falls_back_to_close_write",
                                           "test_byname_on_another_file_system",
                                           "test_inotify_overflow_rescans",
                                           "test_sysusers_tmpfiles_layout",
                                           "test_metrics_unreadable_inbox_file")
                                  or name in ("test_hostile_entry_rejected[chardev]",
                                              "test_hostile_entry_rejected[blockdev]")):
            want_out = True
        check_eq(name in out, want_out, "%s left out of make check" % name)
    for name in ("test_install_tree", "test_systemd_analyze_verify",
                 "test_self_contained_selection"):
        check(name in kept, "%s not in make check" % name)


@needs("lintian", "git")
def test_debian_package(bin):
    for t in ("dpkg-buildpackage", "dh", "lintian", "hardening-check"):
        tool(t)
    v = version()
    top = tempfile.mkdtemp(prefix="ingestd-deb-")
    try:
        src = os.path.join(top, "ingestd-" + v)
        os.makedirs(src)
        # the work tree as it is (committed or not), without what git ignores
        rc, files = run(["git", "ls-files", "-z", "-c", "-o", "--exclude-standard"])
        check_eq(rc, 0, "git ls-files")
        for f in files.split("\0"):
            if f and os.path.lexists(os.path.join(REPO, f)):
                os.makedirs(os.path.join(src, os.path.dirname(f)), exist_ok=True)
                shutil.copy2(os.path.join(REPO, f), os.path.join(src, f), follow_symlinks=False)
        env = clean_env()
        env["DEB_BUILD_OPTIONS"] = "nocheck"
        t0 = time.monotonic()
        rc, out = run(["dpkg-buildpackage", "-us", "-uc"], cwd=src, env=env, timeout=600)
        print("    dpkg-buildpackage %.1fs" % (time.monotonic() - t0), file=sys.stderr)
        check_eq(rc, 0, "dpkg-buildpackage:\n" + out[-4000:])
        changes = os.path.join(top, "ingestd_%s_%s.changes" % (v, arch()))
        deb = os.path.join(top, "ingestd_%s_%s.deb" % (v, arch()))
        check(os.path.isfile(changes) and os.path.isfile(deb), "built: %r" % os.listdir(top))

        # source and binary: no error, no warning (overrides carry their reason)
        rc, out = run(["lintian", "--fail-on", "error,warning", changes], cwd=top, timeout=300)
        tags = [l for l in out.splitlines() if re.match(r"^[EW]: ", l)]
        check_eq((rc, tags), (0, []), "lintian:\n" + out)

        root = os.path.join(top, "root")
        rc, out = run(["dpkg-deb", "-x", deb, root])
        check_eq(rc, 0, "dpkg-deb -x")
        daemon = os.path.join(root, "usr/sbin/ingestd")
        check(os.access(daemon, os.X_OK), "no /usr/sbin/ingestd")
        # Debian 12's own crt1.o/crti.o carry no IBT/SHSTK note, so no
        # binary linked there (sshd, sqlite3 alike) has "Control flow
        # integrity": every other check must pass.
        rc, out = run(["hardening-check", "--nocfprotection", daemon])
        check_eq(rc, 0, "hardening-check:\n" + out)
        for line in ("Position Independent Executable: yes", "Stack protected: yes",
                     "Fortify Source functions: yes", "Read-only relocations: yes",
                     "Immediate binding: yes"):
            check(line in out, "hardening-check: no %r in:\n%s" % (line, out))

        unit = os.path.join(root, pkg_dir("systemdsystemunitdir"), "ingestd.service")
        with open(unit) as f:
            text = f.read()
        check("\nExecStart=/usr/sbin/ingestd -c /etc/ingestd/ingestd.yaml\n" in text,
              "ExecStart of the packaged unit:\n" + text)
        check("\nExecStartPre=+systemd-tmpfiles --create /usr/lib/tmpfiles.d/ingestd.conf\n"
              in text, "ExecStartPre of the packaged unit:\n" + text)
        for f in ("usr/lib/sysusers.d/ingestd.conf", "usr/lib/tmpfiles.d/ingestd.conf",
                  "etc/ingestd/ingestd.yaml", "usr/share/man/man8/ingestd.8.gz",
                  "usr/share/doc/ingestd/copyright"):
            check(os.path.isfile(os.path.join(root, f)), "%s not in the package" % f)

        ctl = os.path.join(top, "control")
        rc, out = run(["dpkg-deb", "-e", deb, ctl])
        check_eq(rc, 0, "dpkg-deb -e")
        with open(os.path.join(ctl, "postinst")) as f:
            postinst = f.read()
        su = postinst.find("systemd-sysusers")
        tf = postinst.find("systemd-tmpfiles")
        check(0 <= su < tf, "postinst: sysusers (%d) must come before tmpfiles (%d):\n%s"
              % (su, tf, postinst))
        # not started, not enabled on a first install (only kept enabled
        # where an earlier install had been enabled by hand)
        check("deb-systemd-invoke" not in postinst, "postinst starts a unit:\n" + postinst)
        for u in ("ingestd.service", "ingestd.socket"):
            check("deb-systemd-helper debian-installed '%s'" % u in postinst,
                  "postinst enables %s on a first install:\n%s" % (u, postinst))
        with open(os.path.join(ctl, "conffiles")) as f:
            check_eq(f.read().split(), ["/etc/ingestd/ingestd.yaml"], "conffiles")
    finally:
        shutil.rmtree(top, ignore_errors=True)


def arch():
    return subprocess.run(["dpkg", "--print-architecture"], stdout=subprocess.PIPE,
                          check=True).stdout.decode().strip()


def pkg_dir(var):
    out = subprocess.run(["pkg-config", "--variable=" + var, "systemd"],
                         stdout=subprocess.PIPE).stdout.decode().strip()
    return out.lstrip("/") or "usr/lib/systemd/system"
