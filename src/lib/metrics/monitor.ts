import type { EgressMetrics, LastError, LiveGauges } from "./egress-metrics";
import { type Health, healthOf, sameHealth } from "./health";

/** Who a node is, for the Prometheus labels and the sidebar. */
export interface NodeLabels {
  id: string;
  name: string;
  /** The flow (tab) the node is on, by its label. */
  flow: string;
  bucket: string;
}

/** One s3-egress node as the monitor sees it. */
export interface MonitoredNode {
  labels: NodeLabels;
  metrics: EgressMetrics;
  gauges(): LiveGauges;
  /** The node's health changed (or its stall grew by a shown unit): its status is to be shown again. */
  healthChanged(): void;
}

/** What the sidebar gets about one node, at most once a second. */
export interface SidebarUpdate extends NodeLabels {
  /** Objects written per second over the last HISTORY_SECONDS, oldest first. */
  objectsPerSecond: number[];
  objectsWritten: number;
  bytesWritten: number;
  queuedMsgs: number;
  queuedBytes: number;
  writesInFlight: number;
  concurrencyLimit: number;
  spoolRecords: number;
  spoolBytes: number;
  retries: number;
  failures: number;
  openBatches: number;
  bufferedBytes: number;
  spilledBytes: number;
  batchMemoryBudget: number;
  lastError: LastError | null;
  lastWriteAt: number;
  health: Health;
  /** Epoch ms of this update. */
  at: number;
}

export const HISTORY_SECONDS = 180;
const SIDEBAR_TOPIC = "s3-egress/metrics";
const TICK_MS = 1000;

export type Publish = (topic: string, data: SidebarUpdate | null, retain: boolean) => void;

interface Watched {
  node: MonitoredNode;
  /** Objects written per second, a ring of HISTORY_SECONDS slots; `next` is the oldest. */
  history: Uint32Array;
  next: number;
  writtenAtLastTick: number;
  health: Health;
  /** The last update sent, without its time: an unchanged node sends nothing. */
  lastSent: string;
}

/**
 * The live s3-egress nodes of one runtime. Once a second (one timer for all nodes, running only
 * while there are nodes) it samples each node's objects written into a short history, keeps its
 * stall watch, and publishes an update for the sidebar when something changed; scrapes read it
 * through `nodes()`.
 */
export class EgressMonitor {
  private readonly watched = new Map<string, Watched>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly publish: Publish,
    /** How long msgs may wait without a write before the node shows a stall. */
    private readonly stallMs: number,
    private readonly clock: () => number = Date.now,
  ) {}

  add(node: MonitoredNode): void {
    const health = healthOf(node.metrics, this.stallMs, this.clock());
    this.watched.set(node.labels.id, { node, history: new Uint32Array(HISTORY_SECONDS), next: 0, writtenAtLastTick: node.metrics.objectsWritten, health, lastSent: "" });
    this.timer ??= setInterval(() => this.tick(), TICK_MS).unref();
  }

  remove(id: string): void {
    if (!this.watched.delete(id)) return;
    // Not retained: the editor forgets the node, and a later editor never hears of it.
    this.publish(`${SIDEBAR_TOPIC}/${id}`, null, false);
    if (this.watched.size > 0) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  nodes(): MonitoredNode[] {
    return [...this.watched.values()].map((watched) => watched.node);
  }

  /** One second's work; called by the timer, and by tests with their own clock. */
  tick(): void {
    const now = this.clock();
    for (const watched of this.watched.values()) {
      const { node } = watched;
      const written = node.metrics.objectsWritten;
      watched.history[watched.next] = written - watched.writtenAtLastTick;
      watched.next = (watched.next + 1) % HISTORY_SECONDS;
      watched.writtenAtLastTick = written;

      const gauges = node.gauges();
      node.metrics.observeWaiting(gauges.waitingMsgs, now);
      const health = healthOf(node.metrics, this.stallMs, now);
      const changed = !sameHealth(health, watched.health);
      watched.health = health;
      if (changed) node.healthChanged();
      this.sendIfChanged(watched, gauges, now);
    }
  }

  private sendIfChanged(watched: Watched, gauges: LiveGauges, now: number): void {
    const { node } = watched;
    const { metrics } = node;
    const objectsPerSecond = [...watched.history.subarray(watched.next), ...watched.history.subarray(0, watched.next)];
    const update: Omit<SidebarUpdate, "at"> = {
      ...node.labels,
      objectsPerSecond,
      objectsWritten: metrics.objectsWritten,
      bytesWritten: metrics.bytesWritten,
      queuedMsgs: gauges.queuedMsgs,
      queuedBytes: gauges.queuedBytes,
      writesInFlight: gauges.writesInFlight,
      concurrencyLimit: gauges.concurrencyLimit,
      spoolRecords: gauges.spoolRecords,
      spoolBytes: gauges.spoolBytes,
      retries: metrics.retriesTotal,
      failures: failuresTotal(metrics),
      openBatches: gauges.openBatches,
      bufferedBytes: gauges.bufferedBytes,
      spilledBytes: gauges.spilledBytes,
      batchMemoryBudget: gauges.batchMemoryBudget,
      lastError: metrics.lastError ? { ...metrics.lastError } : null,
      lastWriteAt: metrics.lastWriteAt,
      health: watched.health,
    };
    const sent = JSON.stringify(update);
    if (sent === watched.lastSent) return;
    watched.lastSent = sent;
    // Retained: an editor opened later gets each node's latest state at once.
    this.publish(`${SIDEBAR_TOPIC}/${node.labels.id}`, { ...update, at: now }, true);
  }
}

function failuresTotal(metrics: EgressMetrics): number {
  let total = 0;
  for (const byCode of Object.values(metrics.failures)) for (const count of byCode.values()) total += count;
  return total;
}
