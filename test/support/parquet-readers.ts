// Readers of the Parquet objects the node writes, written by nobody here: DuckDB (read_parquet and
// parquet_metadata) and parquet-wasm (the Rust arrow-rs reader, its table read through Apache Arrow).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { tableFromIPC } from "apache-arrow";

// parquet-wasm's Node.js build (a subpath export, which this project's module resolution does not follow).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { readParquet } = require("parquet-wasm/node") as { readParquet(bytes: Uint8Array): { intoIPCStream(): Uint8Array } };

export type Row = Record<string, unknown>;

/** One object's file for DuckDB, deleted by `remove()`. */
export class ParquetFile {
  readonly path: string;
  private readonly directory: string;

  constructor(bytes: Buffer) {
    this.directory = mkdtempSync(path.join(tmpdir(), "s3-egress-parquet-"));
    this.path = path.join(this.directory, "batch.parquet");
    writeFileSync(this.path, bytes);
  }

  remove(): void {
    rmSync(this.directory, { recursive: true, force: true });
  }
}

/** Runs SQL in a DuckDB of its own; `?` in `sql` stands for the file, as read_parquet('<file>'). Rows as JSON-friendly values. */
export async function duckdb(file: ParquetFile, sql: string): Promise<Row[]> {
  const instance = await DuckDBInstance.create(":memory:");
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(sql.replaceAll("?", `'${file.path}'`));
    return reader.getRowObjectsJson() as Row[];
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** Column name and type as DuckDB reads them from the object. */
export async function duckdbSchema(file: ParquetFile): Promise<Record<string, string>> {
  const rows = await duckdb(file, "DESCRIBE SELECT * FROM read_parquet(?)");
  return Object.fromEntries(rows.map((row) => [row.column_name as string, row.column_type as string]));
}

/** The object's schema and rows as parquet-wasm reads them (Arrow types as text, values as Arrow gives them). */
export function wasmRead(bytes: Buffer): { schema: Record<string, string>; rows: Row[] } {
  const table = tableFromIPC(readParquet(new Uint8Array(bytes)).intoIPCStream());
  return {
    schema: Object.fromEntries(table.schema.fields.map((field) => [field.name, String(field.type)])),
    rows: table.toArray().map((row) => row.toJSON() as Row),
  };
}
