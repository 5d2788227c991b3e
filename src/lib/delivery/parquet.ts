import { gzipSync } from "node:zlib";
import type { ByteWriter, ParquetWriter } from "hyparquet-writer";
import { InputError } from "../core/errors";
import type { ObjectWriter, UploadResult } from "./multipart";

export const PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet";
/** Parquet's own compression of its pages (gzip through Node's zlib; snappy is the writer's own JavaScript). */
export type ParquetCodec = "snappy" | "gzip" | "none";
/** The key of the batch a row is for, named by errors only: made when one is thrown (it costs as much as a row's check). */
export type BatchKey = () => string;
/** The node's own columns of every row: when the msg arrived (µs, UTC) and its Node-RED `_msgid`. */
export const ARRIVAL_COLUMN = "_arrival";
export const MSGID_COLUMN = "_msgid";

/** What a payload field becomes: objects and arrays are JSON text (Parquet's JSON logical type). */
export type ColumnKind = "boolean" | "int64" | "double" | "string" | "json";
/** A batch's columns, in the order their fields first appeared (or as a given schema orders them). */
export type Columns = Map<string, ColumnKind>;

/** A schema given on the node: its columns, and those a row must have (not null). */
export interface GivenSchema {
  columns: Columns;
  required: Set<string>;
}

/** The node's `parquetSchema` (checked with parquetSchemaProblem) as columns, or undefined for a schema inferred from the payloads. */
export function givenSchema(text: string | undefined): GivenSchema | undefined {
  if (text === undefined || text.trim() === "") return undefined;
  const columns: Columns = new Map();
  const required = new Set<string>();
  for (const [name, type] of Object.entries(JSON.parse(text) as Record<string, string>)) {
    columns.set(name, type.replace(/\?$/, "") as ColumnKind);
    if (!type.endsWith("?")) required.add(name);
  }
  return { columns, required };
}

const CODECS = { snappy: "SNAPPY", gzip: "GZIP", none: "UNCOMPRESSED" } as const;
const COMPRESSORS = { GZIP: (input: Uint8Array) => new Uint8Array(gzipSync(input)) };
const NEWLINE = 0x0a;
/** The most JSON text one row group is encoded from: its rows exist as objects while it is encoded. */
const ROW_GROUP_BYTES = 1024 * 1024;
/** The bytes of a text min/max kept per row group (hyparquet-writer's own truncation in the footer). */
const STATISTICS_BYTES = 16;
/** What an encoder's byte buffer keeps between row groups. */
const IDLE_BUFFER_BYTES = 1024;

type HyparquetWriter = typeof import("hyparquet-writer");
let hyparquetWriter: HyparquetWriter | undefined;

/**
 * hyparquet-writer, an ES module: required only by a node that writes Parquet, which needs a
 * Node.js that can require ES modules (20.19 and later); a node that cannot says so at start.
 */
export function parquetWriterModule(): HyparquetWriter {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (hyparquetWriter ??= require("hyparquet-writer") as HyparquetWriter);
  } catch (error) {
    throw new Error(`concatenation parquet needs Node.js 20.19 or later (it loads the ES module hyparquet-writer): ${(error as Error).message}`);
  }
}

/** The kind of a non-null JSON value. */
function kindOf(value: unknown): ColumnKind {
  if (typeof value === "boolean") return "boolean";
  if (typeof value === "number") return Number.isSafeInteger(value) ? "int64" : "double";
  if (typeof value === "string") return "string";
  return "json";
}

/** The kind a column takes both kinds in: whole numbers widen to double, anything else mixed is JSON text. */
function widened(a: ColumnKind, b: ColumnKind): ColumnKind {
  if (a === b) return a;
  if ((a === "int64" && b === "double") || (a === "double" && b === "int64")) return "double";
  return "json";
}

/**
 * The row a payload makes: a JSON object (or a string or Buffer holding one), as one line of
 * JSON text `[arrival ms, _msgid, object]` (the form open batches hold and spill, one row a
 * line), and the kinds of its fields. Throws InputError, naming the batch, for anything else.
 */
export function parquetRow(payload: unknown, arrival: number, msgid: string, key: BatchKey): { line: string; kinds: Columns } {
  let row = payload;
  if (typeof payload === "string" || Buffer.isBuffer(payload)) {
    try {
      row = JSON.parse(payload.toString());
    } catch {
      throw new InputError("msg.payload", `is not a JSON object (concatenation parquet, batch ${key()}): text that is not JSON`);
    }
  }
  if (row === null || typeof row !== "object" || Array.isArray(row)) {
    throw new InputError("msg.payload", `is not a JSON object (concatenation parquet, batch ${key()}): ${row === null ? "null" : Array.isArray(row) ? "an array" : typeof row}`);
  }
  const kinds: Columns = new Map();
  for (const [name, value] of Object.entries(row)) {
    if (name === ARRIVAL_COLUMN || name === MSGID_COLUMN) throw new InputError(`msg.payload.${name}`, `is a column the node writes itself (concatenation parquet, batch ${key()})`);
    if (value !== null && value !== undefined) kinds.set(name, kindOf(value));
  }
  let text: string;
  try {
    text = JSON.stringify(row);
  } catch (error) {
    throw new InputError("msg.payload", `cannot be serialised as JSON: ${(error as Error).message}`);
  }
  return { line: `[${arrival},${JSON.stringify(msgid)},${text}]`, kinds };
}

/** The field kinds of a row from its line (a row read back from the spool). */
export function kindsOfLine(line: string | Buffer): Columns {
  const [, , row] = JSON.parse(line.toString()) as [number, string, Record<string, unknown>];
  const kinds: Columns = new Map();
  for (const [name, value] of Object.entries(row)) if (value !== null) kinds.set(name, kindOf(value));
  return kinds;
}

/** Adds a row's field kinds to a batch's columns (widening as needed). */
export function addColumns(columns: Columns, kinds: Columns): void {
  for (const [name, kind] of kinds) {
    const known = columns.get(name);
    if (known !== kind) columns.set(name, known === undefined ? kind : widened(known, kind));
  }
}

/**
 * Why a row does not fit fixed columns (a given schema, or those a streaming batch fixed with its
 * first row group), naming the field and the batch, or undefined when it fits.
 */
export function misfit(columns: Columns, kinds: Columns, key: BatchKey, given?: GivenSchema): InputError | undefined {
  const fixedBy = given ? "the Parquet schema given on the node" : "its Parquet schema, fixed (inferred) when its first row group was written";
  for (const [name, kind] of kinds) {
    const known = columns.get(name);
    if (known === undefined) return new InputError(`msg.payload.${name}`, `is not a column of batch ${key()}: not in ${fixedBy}`);
    if (widened(known, kind) !== known) return new InputError(`msg.payload.${name}`, `is ${kind}, but column ${name} of batch ${key()} is ${known} (${fixedBy})`);
  }
  for (const name of given?.required ?? []) {
    if (!kinds.has(name)) return new InputError(`msg.payload.${name}`, `is missing (or null), but required by the Parquet schema given on the node (batch ${key()})`);
  }
  return undefined;
}

/** The Parquet schema of a batch: its own columns first, then the payload fields in order, optional unless `required`. */
function schemaOf(columns: Columns, required: Set<string> | undefined) {
  const fields = [...columns].map(([name, kind]) => {
    const repetition_type = required?.has(name) ? ("REQUIRED" as const) : ("OPTIONAL" as const);
    if (kind === "boolean") return { name, type: "BOOLEAN" as const, repetition_type };
    if (kind === "int64") return { name, type: "INT64" as const, repetition_type };
    if (kind === "double") return { name, type: "DOUBLE" as const, repetition_type };
    if (kind === "string") return { name, type: "BYTE_ARRAY" as const, converted_type: "UTF8" as const, repetition_type };
    return { name, type: "BYTE_ARRAY" as const, converted_type: "JSON" as const, repetition_type };
  });
  return [
    { name: "root", num_children: fields.length + 2 },
    { name: ARRIVAL_COLUMN, type: "INT64" as const, repetition_type: "REQUIRED" as const, logical_type: { type: "TIMESTAMP" as const, isAdjustedToUTC: true, unit: "MICROS" as const } },
    { name: MSGID_COLUMN, type: "BYTE_ARRAY" as const, converted_type: "UTF8" as const, repetition_type: "OPTIONAL" as const },
    ...fields,
  ];
}

/**
 * Encodes a batch's rows (its held lines, see parquetRow) as Parquet: each write() of whole or
 * partial lines becomes one row group as soon as its lines are whole, and its encoded bytes go
 * on to `out`, so a batch is never held whole, encoded or not; finish() writes the footer (with
 * every row group's column statistics) and finishes `out`. Encoding is synchronous: one row
 * group's rows exist as objects at a time, whatever the number of batches.
 */
export class ParquetEncoder implements ObjectWriter {
  private readonly bytes: ByteWriter;
  private readonly writer: ParquetWriter;
  private readonly names: string[];
  private readonly columns: Columns;
  /** The start of a line that the last write cut. */
  private partial: Buffer | undefined;

  constructor(
    private readonly out: ObjectWriter,
    columns: Columns,
    codec: ParquetCodec,
    required?: Set<string>,
  ) {
    const { ByteWriter, ParquetWriter } = parquetWriterModule();
    this.bytes = new ByteWriter();
    // Its own copy: the schema is fixed now.
    this.columns = new Map(columns);
    this.names = [...columns.keys()];
    // Each row group's bytes go on as soon as it is encoded: the writer keeps only the footer's metadata.
    (this.bytes as unknown as { flush: () => void }).flush = () => this.handOver();
    this.writer = new ParquetWriter({ writer: this.bytes, schema: schemaOf(columns, required), codec: CODECS[codec], compressors: COMPRESSORS, statistics: true, createdBy: "@iot-sinks/node-red-s3-egress (hyparquet-writer)" });
  }

  get buffered(): number {
    return this.bytes.buffer.byteLength + (this.partial?.length ?? 0) + this.out.buffered;
  }

  get backlogged(): boolean {
    return this.out.backlogged;
  }

  drained(): Promise<void> {
    return this.out.drained();
  }

  get failed(): Error | undefined {
    return this.out.failed;
  }

  /**
   * Takes the next bytes of the batch's lines: whole lines beyond ROW_GROUP_BYTES are encoded as
   * row groups of at most that much JSON each (a longer line makes one of its own); the rest waits
   * for the next bytes or finish(), so a batch ends in one row group, not a stray last line.
   */
  write(bytes: Buffer): void {
    const text = this.partial ? Buffer.concat([this.partial, bytes]) : bytes;
    let start = 0;
    while (text.length - start > ROW_GROUP_BYTES) {
      let cut = text.lastIndexOf(NEWLINE, start + ROW_GROUP_BYTES);
      if (cut <= start) cut = text.indexOf(NEWLINE, start + ROW_GROUP_BYTES);
      if (cut < 0) break;
      this.rowGroup(text.subarray(start, cut));
      start = cut + 1;
    }
    // A copy: the caller's buffer serves other bytes once this returns.
    this.partial = start < text.length ? Buffer.from(text.subarray(start)) : undefined;
  }

  writeText(text: string): void {
    this.write(Buffer.from(text, "utf8"));
  }

  async finish(): Promise<UploadResult> {
    if (this.partial) this.rowGroup(this.partial);
    this.partial = undefined;
    this.writer.finish();
    this.handOver();
    return this.out.finish();
  }

  /** Encodes lines (without the last "\n") as one row group. */
  private rowGroup(lines: Buffer): void {
    const text = lines.toString("utf8");
    if (text === "") return;
    const rows = text.split("\n");
    const arrival = new Array<bigint>(rows.length);
    const msgid = new Array<string>(rows.length);
    const data = this.names.map(() => new Array<unknown>(rows.length).fill(null));
    for (let index = 0; index < rows.length; index++) {
      const [at, id, row] = JSON.parse(rows[index]) as [number, string, Record<string, unknown>];
      arrival[index] = BigInt(at) * 1000n;
      msgid[index] = id;
      for (let column = 0; column < this.names.length; column++) {
        const value = row[this.names[column]];
        if (value === undefined || value === null) continue;
        const kind = this.columns.get(this.names[column]);
        data[column][index] = kind === "int64" ? BigInt(value as number) : value;
      }
    }
    const columnData = [
      { name: ARRIVAL_COLUMN, data: arrival },
      { name: MSGID_COLUMN, data: msgid },
      ...this.names.map((name, column) => ({ name, data: data[column] })),
    ];
    void this.writer.write({ columnData, rowGroupSize: rows.length });
    // The writer keeps each row group's statistics until the footer: long text would stay whole meanwhile.
    const groups = (this.writer as unknown as { row_groups: { columns: { meta_data?: { statistics?: Statistics } }[] }[] }).row_groups;
    for (const column of groups[groups.length - 1].columns) shortenStatistics(column.meta_data?.statistics);
  }

  /**
   * Passes the encoded bytes on and empties the byte writer (its offset keeps counting the file);
   * a buffer grown for a row group goes too, so that an open batch between row groups holds none.
   */
  private handOver(): void {
    if (this.bytes.index === 0) return;
    this.out.write(Buffer.from(this.bytes.getBytes()));
    this.bytes.index = 0;
    if (this.bytes.buffer.byteLength > IDLE_BUFFER_BYTES) {
      this.bytes.buffer = new ArrayBuffer(IDLE_BUFFER_BYTES);
      this.bytes.view = new DataView(this.bytes.buffer);
    }
  }
}

/** A column chunk's statistics as hyparquet-writer keeps them until the footer (min/max of text as bytes or strings). */
interface Statistics {
  min_value?: unknown;
  max_value?: unknown;
  is_min_value_exact?: boolean;
  is_max_value_exact?: boolean;
}

/**
 * Cuts text min/max to what the footer keeps anyway (STATISTICS_BYTES, as hyparquet-writer
 * truncates them), marked inexact: the min a prefix of itself, the max its prefix with the last
 * byte raised (dropped when there is none to raise), so both still bound the values.
 */
function shortenStatistics(statistics: Statistics | undefined): void {
  if (!statistics) return;
  const bytesOf = (value: unknown) => (value instanceof Uint8Array ? value : typeof value === "string" ? Buffer.from(value, "utf8") : undefined);
  const min = bytesOf(statistics.min_value);
  if (min && min.length > STATISTICS_BYTES) {
    statistics.min_value = Uint8Array.prototype.slice.call(min, 0, STATISTICS_BYTES);
    statistics.is_min_value_exact = false;
  }
  const max = bytesOf(statistics.max_value);
  if (max && max.length > STATISTICS_BYTES) {
    let last = STATISTICS_BYTES - 1;
    while (last >= 0 && max[last] === 0xff) last--;
    if (last < 0) delete statistics.max_value;
    else {
      const bound = Uint8Array.prototype.slice.call(max, 0, last + 1);
      bound[last]++;
      statistics.max_value = bound;
    }
    statistics.is_max_value_exact = false;
  }
}

/** Collects what an encoder writes, for a batch written with one PutObject. */
export class Collected implements ObjectWriter {
  readonly chunks: Buffer[] = [];
  readonly buffered = 0;
  readonly backlogged = false;
  readonly failed = undefined;
  async drained(): Promise<void> {}
  write(bytes: Buffer): void {
    this.chunks.push(bytes);
  }
  writeText(text: string): void {
    this.chunks.push(Buffer.from(text, "utf8"));
  }
  async finish(): Promise<UploadResult> {
    return { etag: "" } as UploadResult;
  }
}

/** A whole (small) batch's rows as one Parquet object. */
export async function parquetObject(lines: Buffer, columns: Columns, codec: ParquetCodec, required?: Set<string>): Promise<Buffer> {
  const collected = new Collected();
  const encoder = new ParquetEncoder(collected, columns, codec, required);
  encoder.write(lines);
  await encoder.finish();
  return Buffer.concat(collected.chunks);
}
