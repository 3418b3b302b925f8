# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
pg.py - one real PostgreSQL 15 server for the tests of a module.

    import pg
    data = pg.copy_out("COPY (SELECT ...) TO STDOUT WITH (FORMAT csv, HEADER)")

The server is started the first time a test asks for it (initdb + pg_ctl,
about 2 s) and stopped when the suite ends: run.py calls the cleanups
registered with harness.at_end(), and atexit does it too should the runner
itself be interrupted. It runs as the `postgres` user in a temp dir, with
a Unix socket only (no TCP port), trust authentication, fsync off, a
UTF8 database with the C locale so that COPY ... ENCODING converts from a
known server encoding.

Every call raises AssertionError with PostgreSQL's message when psql fails.
"""

import atexit
import os
import shutil
import subprocess
import tempfile

import harness

BIN = "/usr/lib/postgresql/15/bin"


class Server:
    def __init__(self, settings="-c fsync=off"):
        self.settings = settings  # bench/run.py: fsync on
        self.dir = None
        self.data = None
        self.sock = None
        self.running = False

    def _su(self, cmd, timeout=60):
        r = subprocess.run(["su", "postgres", "-c", cmd], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout * harness.SCALE)
        if r.returncode != 0:
            raise AssertionError("postgres: %r exited %d: %s%s" % (
                cmd, r.returncode, r.stdout.decode(errors="replace"),
                r.stderr.decode(errors="replace")))
        return r

    def start(self):
        if os.geteuid() != 0:
            raise AssertionError("pg.py runs PostgreSQL as the postgres user (su): run the suite as root")
        if not os.path.isfile(os.path.join(BIN, "initdb")):
            raise AssertionError("PostgreSQL 15 is not installed (%s/initdb missing): "
                                 "run scripts/test-deps.sh" % BIN)
        self.dir = tempfile.mkdtemp(prefix="ingestd-e2e-pg-", dir="/tmp")
        os.chmod(self.dir, 0o755)  # the postgres user must reach its folders
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        for p in (self.data, self.sock):
            os.mkdir(p, 0o700)
            shutil.chown(p, "postgres", "postgres")
        self._su("%s/initdb -D %s -A trust -U postgres -E UTF8 --locale=C" % (BIN, self.data))
        self.resume()
        self.running = True

    def halt(self, mode="fast"):
        """Stop the server but keep its data (a test that takes the
        database away); resume() starts it again."""
        self._su("%s/pg_ctl -D %s -m %s stop" % (BIN, self.data, mode), timeout=30)

    def resume(self):
        self._su("%s/pg_ctl -D %s -o '-k %s -c listen_addresses= %s' -l %s/pg.log -w start"
                 % (BIN, self.data, self.sock, self.settings, self.data))

    def hba_first(self, line):
        """Put line first in pg_hba.conf and reload (a rule for one role)."""
        path = os.path.join(self.data, "pg_hba.conf")
        with open(path) as f:
            old = f.read()
        if line not in old:
            with open(path, "w") as f:
                f.write(line + "\n" + old)
        self._su("%s/pg_ctl -D %s reload" % (BIN, self.data))

    def stop(self):
        if self.running:
            self.running = False
            try:
                self._su("%s/pg_ctl -D %s -m fast stop" % (BIN, self.data), timeout=30)
            except (AssertionError, subprocess.TimeoutExpired):
                subprocess.run(["su", "postgres", "-c", "%s/pg_ctl -D %s -m immediate stop"
                                % (BIN, self.data)], capture_output=True, timeout=30)
        if self.dir and os.environ.get("KEEP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def psql(self, sql, db="postgres"):
        """Run sql (text, UTF-8) through psql; returns its stdout as bytes
        (COPY ... TO STDOUT output exactly as the server sent it)."""
        env = dict(os.environ, PGCLIENTENCODING="UTF8")
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.sock,
                            "-U", "postgres", "-d", db, "-f", "-"],
                           input=sql.encode("utf-8"), capture_output=True, env=env,
                           timeout=60 * harness.SCALE)
        if r.returncode != 0:
            raise AssertionError("psql exited %d: %s" % (r.returncode, r.stderr.decode(errors="replace")))
        return r.stdout


_server = None


def server():
    """The module's server, started on first use."""
    global _server
    if _server is None:
        s = Server()
        harness.at_end(s.stop)
        atexit.register(s.stop)
        s.start()  # a failed start leaves it registered for the cleanup
        _server = s
    return _server


def literal(v):
    """A Python value as an SQL literal (standard_conforming_strings: only
    the quote is special)."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def table_sql(name, columns, rows):
    """CREATE TABLE name (columns...) and INSERT rows, as one script.
    columns: [(name, sql type)]."""
    out = ["DROP TABLE IF EXISTS %s;" % name,
           "CREATE TABLE %s (%s);" % (name, ", ".join('"%s" %s' % c for c in columns))]
    for r in rows:
        out.append("INSERT INTO %s VALUES (%s);" % (name, ", ".join(literal(v) for v in r)))
    return "\n".join(out) + "\n"


def copy_out(setup_sql, copy_sql):
    """Run setup_sql, then one COPY ... TO STDOUT; returns the bytes it wrote."""
    return server().psql(setup_sql + copy_sql + "\n")
