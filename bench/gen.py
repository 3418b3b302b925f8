#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""bench/gen.py - deterministic product CSV files for `make bench`.

    gen.py OUT ROWS [--seed N] [--changed] [--bad-pct P] [--start K]
                    [--shuffle] [--upsert-into BASE]

Rows look like the seed's product catalogue: sku (key), name, price,
description (quoted, with a comma), active. --changed alters every price and
name (an all-updates re-ingest); --bad-pct makes that share of rows invalid
(a non-numeric price), spread evenly. --shuffle writes the very same rows in
a random order (issue 17: keys as real feeds send them). --upsert-into BASE
makes ROWS rows for a table that holds keys 0..BASE-1: half of them updates
of distinct random existing keys, half new keys from BASE on, shuffled
together (implies --changed). Same arguments, same bytes.
"""
import argparse
import random

COLOURS = ["red", "green", "blue", "black", "white", "anthracite", "sand"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("rows", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--changed", action="store_true")
    ap.add_argument("--bad-pct", type=float, default=0.0)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--shuffle", action="store_true")
    ap.add_argument("--upsert-into", type=int, default=0)
    a = ap.parse_args()
    if a.upsert_into:
        a.changed = True
        keys = random.Random(a.seed + 1).sample(range(a.upsert_into), a.rows // 2)
        keys += range(a.upsert_into, a.upsert_into + a.rows - a.rows // 2)
    else:
        keys = range(a.start, a.start + a.rows)
    shuffle = a.shuffle or a.upsert_into > 0
    rnd = random.Random(a.seed)
    bad_every = int(round(100 / a.bad_pct)) if a.bad_pct > 0 else 0
    suffix = " (new)" if a.changed else ""
    with open(a.out, "w", newline="") as f:
        f.write("sku,name,price,description,active\n")
        lines = []
        for i in keys:
            cents = rnd.randint(0, 999999)
            if a.changed:
                cents += 1
            price = "%d.%02d" % divmod(cents, 100)
            if bad_every and i % bad_every == bad_every - 1:
                price = "n/a"
            lines.append('SKU-%09d,Product %d%s,%s,"Description of product %d, size %d, '
                         'colour %s; for everyday use",%s\n'
                         % (i, i, suffix, price, i, rnd.randint(1, 50),
                            COLOURS[rnd.randrange(len(COLOURS))],
                            "true" if rnd.random() < 0.8 else "false"))
            if not shuffle and len(lines) >= 10000:
                f.write("".join(lines))
                lines = []
        if shuffle:
            # the same rows, another order: a shuffle of its own generator
            random.Random(a.seed + 2).shuffle(lines)
        f.write("".join(lines))


if __name__ == "__main__":
    main()
