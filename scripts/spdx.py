#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
scripts/spdx.py [FILE...] - give every source file its SPDX header.

Without arguments: every file git tracks. A file that already has an
SPDX-License-Identifier line in its first 10 lines is left alone; a file
whose kind has no comment syntax here (data, images, Markdown) is left to
.reuse/dep5. The header goes first, after a "#!" line if there is one.
`reuse lint` (tests/e2e/test_package.py) checks the result.
"""

# REUSE-IgnoreStart (the strings below are not this file's licence)
import os
import subprocess
import sys

HOLDER = "2026 the ingestd authors"
LICENSE = "MIT"

HASH = "# %s\n"
STYLES = {
    ".c": "/* %s */\n", ".h": "/* %s */\n",
    ".py": HASH, ".sh": HASH, ".yaml": HASH, ".yml": HASH, ".toml": HASH,
    ".service": HASH, ".socket": HASH, ".sysusers": HASH, ".tmpfiles": HASH,
    ".8": ".\\\" %s\n", ".5": ".\\\" %s\n",
}
NAMES = {"Makefile": HASH, ".gitignore": HASH, ".clang-format": HASH, "rules": HASH,
         "watch": HASH, "lintian-overrides": HASH}


def style(path):
    base = os.path.basename(path)
    if base in NAMES:
        return NAMES[base]
    ext = os.path.splitext(base)[1]
    if ext in STYLES:
        return STYLES[ext]
    try:
        with open(path, "rb") as f:
            first = f.readline()
    except OSError:
        return None
    if first.startswith(b"#!") and (b"python" in first or b"sh" in first):
        return HASH
    return None


# Left to .reuse/dep5 whatever their kind: test data kept as published.
DATA = ("tests/data/", "tests/fuzz/corpus/")


def annotate(path):
    if path.startswith(DATA):
        return False
    fmt = style(path)
    if fmt is None:
        return False
    with open(path, "r", encoding="utf-8") as f:
        text = f.read()
    if "SPDX-License-Identifier:" in "".join(text.splitlines(True)[:10]):
        return False
    head = (fmt % ("SPDX-FileCopyrightText: " + HOLDER)
            + fmt % ("SPDX-License-Identifier: " + LICENSE))
    if text.startswith("#!"):
        nl = text.index("\n") + 1
        text = text[:nl] + head + text[nl:]
    else:
        text = head + text
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return True


def main(argv):
    files = argv or subprocess.run(["git", "ls-files"], check=True, stdout=subprocess.PIPE,
                                   text=True).stdout.split()
    done = [p for p in files if os.path.isfile(p) and annotate(p)]
    for p in done:
        print("spdx: %s" % p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
# REUSE-IgnoreEnd
