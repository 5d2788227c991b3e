import { FAILURE_CLASSES, type EgressMetrics, type LiveGauges } from "./egress-metrics";
import type { NodeLabels } from "./monitor";

/** One node at scrape time: its counters and what it holds now. */
export interface ScrapedNode {
  labels: NodeLabels;
  metrics: EgressMetrics;
  gauges: LiveGauges;
}

/** The content type of the Prometheus text exposition format. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type Extra = Record<string, string>;
type Sample = [extra: Extra, value: number, suffix?: string];

interface Family {
  name: string;
  type: "counter" | "gauge" | "histogram";
  help: string;
  samples(node: ScrapedNode, now: number): Sample[];
}

const NONE: Extra = {};
const seconds = (epochMs: number): number => epochMs / 1000;

/** Every series, one set per node; names follow Prometheus' conventions (base units, _total on counters). */
const FAMILIES: Family[] = [
  { name: "s3_egress_objects_written_total", type: "counter", help: "Objects stored in S3.", samples: ({ metrics }) => [[NONE, metrics.objectsWritten]] },
  { name: "s3_egress_bytes_written_total", type: "counter", help: "Bytes of the objects stored in S3.", samples: ({ metrics }) => [[NONE, metrics.bytesWritten]] },
  {
    name: "s3_egress_msgs_failed_total",
    type: "counter",
    help: "Msgs refused or failed for good, by class (input, queue_full, permanent, gave_up, closed, other) and S3 error code.",
    samples: ({ metrics }) =>
      FAILURE_CLASSES.flatMap((failureClass): Sample[] => {
        const byCode = [...metrics.failures[failureClass]];
        // Every class is listed, so a rate() over it starts from 0 rather than from the first failure.
        if (byCode.length === 0) return [[{ class: failureClass }, 0]];
        return byCode.map(([code, count]): Sample => [code ? { class: failureClass, code } : { class: failureClass }, count]);
      }),
  },
  {
    name: "s3_egress_retries_total",
    type: "counter",
    help: "Attempts that failed transiently and were run again, by S3 error code.",
    samples: ({ metrics }) => [...metrics.retries].map(([reason, count]): Sample => [{ reason }, count]),
  },
  { name: "s3_egress_writes_in_flight", type: "gauge", help: "S3 requests under way.", samples: ({ gauges }) => [[NONE, gauges.writesInFlight]] },
  { name: "s3_egress_concurrency_limit", type: "gauge", help: "S3 requests the node allows in flight now.", samples: ({ gauges }) => [[NONE, gauges.concurrencyLimit]] },
  { name: "s3_egress_queue_msgs", type: "gauge", help: "Writes waiting in memory for a slot.", samples: ({ gauges }) => [[NONE, gauges.queuedMsgs]] },
  { name: "s3_egress_queue_bytes", type: "gauge", help: "Bytes held in memory by writes queued or in flight.", samples: ({ gauges }) => [[NONE, gauges.queuedBytes]] },
  { name: "s3_egress_spool_records", type: "gauge", help: "Records in the durable spool not yet written.", samples: ({ gauges }) => [[NONE, gauges.spoolRecords]] },
  { name: "s3_egress_spool_bytes", type: "gauge", help: "Bytes of the records in the durable spool.", samples: ({ gauges }) => [[NONE, gauges.spoolBytes]] },
  {
    name: "s3_egress_spool_oldest_age_seconds",
    type: "gauge",
    help: "Age of the oldest record in the spool not yet written (0 when empty).",
    samples: ({ gauges }, now) => [[NONE, gauges.spoolOldestAt === undefined ? 0 : Math.max(0, seconds(now - gauges.spoolOldestAt))]],
  },
  { name: "s3_egress_open_batches", type: "gauge", help: "Batches open (Batch Completions route).", samples: ({ gauges }) => [[NONE, gauges.openBatches]] },
  { name: "s3_egress_batch_buffered_bytes", type: "gauge", help: "Bytes held in memory across open batches.", samples: ({ gauges }) => [[NONE, gauges.bufferedBytes]] },
  { name: "s3_egress_batch_spilled_bytes", type: "gauge", help: "Bytes of open batches kept on disk (spill files or the spool's records) beyond Batch memory.", samples: ({ gauges }) => [[NONE, gauges.spilledBytes]] },
  { name: "s3_egress_batch_memory_budget_bytes", type: "gauge", help: "Batch memory: the bytes open batches may hold in memory.", samples: ({ gauges }) => [[NONE, gauges.batchMemoryBudget]] },
  {
    name: "s3_egress_request_duration_seconds",
    type: "histogram",
    help: "Duration of the S3 requests that succeeded (PutObject, multipart parts and completions).",
    samples: ({ metrics }) => {
      const histogram = metrics.requestDurations;
      return [
        ...histogram.cumulative().map(({ le, count }): Sample => [{ le: le === Number.POSITIVE_INFINITY ? "+Inf" : String(le) }, count, "_bucket"]),
        [NONE, histogram.sum, "_sum"],
        [NONE, histogram.count, "_count"],
      ];
    },
  },
  {
    name: "s3_egress_last_write_timestamp_seconds",
    type: "gauge",
    help: "When the last object was stored (Unix time); absent before the first.",
    samples: ({ metrics }) => (metrics.lastWriteAt ? [[NONE, seconds(metrics.lastWriteAt)]] : []),
  },
  {
    name: "s3_egress_last_error_timestamp_seconds",
    type: "gauge",
    help: "When the last error (a retry or a failure) happened (Unix time), labelled with its code; absent before the first.",
    samples: ({ metrics }) => (metrics.lastError ? [[{ code: metrics.lastError.code }, seconds(metrics.lastError.at)]] : []),
  },
];

/** The Prometheus text exposition of every node: HELP and TYPE once per family, then each node's samples. */
export function exposition(nodes: ScrapedNode[], now = Date.now()): string {
  const lines: string[] = [];
  for (const family of FAMILIES) {
    lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
    for (const node of nodes) {
      const identity = { node_id: node.labels.id, node_name: node.labels.name, flow: node.labels.flow, bucket: node.labels.bucket };
      for (const [extra, value, suffix = ""] of family.samples(node, now)) {
        lines.push(`${family.name}${suffix}${labelSet({ ...identity, ...extra })} ${value}`);
      }
    }
  }
  return `${lines.join("\n")}\n`;
}

function labelSet(labels: Record<string, string>): string {
  return `{${Object.entries(labels)
    .map(([name, value]) => `${name}="${escapeLabel(value)}"`)
    .join(",")}}`;
}

/** Label values escape backslash, double quote and line feed, as the format requires. */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
