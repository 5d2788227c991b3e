import type { Node, NodeAPI } from "node-red";
import type { Request, Response } from "express";
import type { Batches } from "../delivery/batches";
import type { Spool } from "../delivery/spool";
import type { Writer } from "../delivery/writer";
import type { LiveGauges } from "../metrics/egress-metrics";
import { EgressMonitor, type SidebarUpdate } from "../metrics/monitor";
import { EXPOSITION_CONTENT_TYPE, exposition } from "../metrics/prometheus";

/** `s3EgressMetrics` in settings.js. */
export interface MetricsSettings {
  /** `false` turns the metrics off: no counters, no sidebar, no Prometheus route, no stall signal (to measure what they cost). */
  enabled: boolean;
  /** `true` serves /s3-egress/metrics on the HTTP-in path (httpNodeRoot) as well, without admin auth: for a private network's scraper. */
  httpNode: boolean;
  /** Msgs waiting this long without a write turn the status yellow. */
  stallMs: number;
}

const DEFAULT_STALL_MINUTES = 5;

export function metricsSettings(RED: NodeAPI): MetricsSettings {
  const configured = (RED.settings as { s3EgressMetrics?: { enabled?: unknown; httpNode?: unknown; stallMinutes?: unknown } }).s3EgressMetrics ?? {};
  const stallMinutes = Number(configured.stallMinutes);
  return {
    enabled: configured.enabled !== false,
    httpNode: configured.httpNode === true,
    stallMs: (Number.isFinite(stallMinutes) && stallMinutes > 0 ? stallMinutes : DEFAULT_STALL_MINUTES) * 60_000,
  };
}

/**
 * The runtime's monitor of s3-egress nodes, publishing sidebar updates over the editor's comms
 * channel, and its Prometheus route: GET /s3-egress/metrics on the admin API, behind the
 * `s3-egress.read` permission (a bearer token when adminAuth is on), and on the HTTP-in path
 * when settings.js asks for it. Undefined when the metrics are turned off.
 */
export function startMonitoring(RED: NodeAPI, settings: MetricsSettings): EgressMonitor | undefined {
  if (!settings.enabled) return undefined;
  const monitor = new EgressMonitor((topic: string, data: SidebarUpdate | null, retain: boolean) => RED.comms.publish(topic, data ?? undefined, retain), settings.stallMs);
  const scrape = (_req: Request, res: Response) => {
    const nodes = monitor.nodes().map((node) => ({ labels: node.labels, metrics: node.metrics, gauges: node.gauges() }));
    res.set("Content-Type", EXPOSITION_CONTENT_TYPE).send(exposition(nodes));
  };
  RED.httpAdmin.get("/s3-egress/metrics", RED.auth.needsPermission("s3-egress.read"), scrape);
  // httpNodeRoot: false leaves no HTTP-in path to serve it on.
  if (settings.httpNode && RED.httpNode) RED.httpNode.get("/s3-egress/metrics", scrape);
  return monitor;
}

/** The label of the flow (tab) a node is on, or its id when it has none. */
export function flowLabelOf(RED: NodeAPI, node: Node): string {
  return RED.util.getSetting(node, "NR_FLOW_NAME") || node.z || "";
}

/** What a node holds, read from its live parts: the writer, its spool once open, and its open batches. */
export function gaugesOf(writer: Writer, spool: Spool | undefined, batches: Batches | undefined, spooledForLater: number): LiveGauges {
  return {
    writesInFlight: writer.inFlight,
    concurrencyLimit: writer.limit.limit,
    queuedMsgs: writer.queued,
    queuedBytes: writer.bytesHeld,
    spoolRecords: spool?.pending ?? 0,
    spoolBytes: spool?.pendingBytes ?? 0,
    spoolOldestAt: spool?.oldestPendingAt,
    openBatches: batches?.openCount ?? 0,
    bufferedBytes: batches?.bufferedBytes ?? 0,
    spilledBytes: batches?.spilledBytes ?? 0,
    batchMemoryBudget: batches?.memoryBudget ?? 0,
    waitingMsgs: writer.queued + writer.inFlight + spooledForLater,
  };
}
