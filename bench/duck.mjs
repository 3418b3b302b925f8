// SPDX-FileCopyrightText: 2026 the ingestd authors
// SPDX-License-Identifier: MIT
// bench/duck.mjs DB SQL... - run each SQL statement on the DuckDB database
// DB with @duckdb/node-api (npm install into bench/node_modules; bench/run.py
// skips DuckDB when it is absent).
import { DuckDBInstance } from "@duckdb/node-api";

const [db, ...stmts] = process.argv.slice(2);
const inst = await DuckDBInstance.create(db);
const conn = await inst.connect();
for (const s of stmts)
	await conn.run(s);
conn.closeSync();
