// The "S3 egress" sidebar tab: every s3-egress node of the workspace with what it is doing now. The
// runtime publishes one update per node at most once a second on the comms topic
// s3-egress/metrics/<node id> (src/lib/metrics/monitor.ts).
import { formatBytes } from "../lib/core/bytes";
import type { SidebarUpdate } from "../lib/metrics/monitor";
import type { EditorNode } from "../lib/editor/red";

const TOPIC = "s3-egress/metrics";
// Seconds averaged for the objects/s figure beside the sparkline, and for each point of the sparkline
// (writes land on either side of a one-second tick, so single seconds jitter).
const RATE_SECONDS = 10;
const SPARKLINE_SECONDS = 5;
const SVG = "http://www.w3.org/2000/svg";
// Figures shown under the sparkline: locale key and how to read it from an update.
const FIGURES: [string, (update: SidebarUpdate) => string][] = [
  ["written", (u) => `${u.objectsWritten} · ${formatBytes(u.bytesWritten)}`],
  ["queue", (u) => `${u.queuedMsgs} · ${formatBytes(u.queuedBytes)}`],
  ["in-flight", (u) => `${u.writesInFlight} / ${u.concurrencyLimit}`],
  ["spool", (u) => `${u.spoolRecords} · ${formatBytes(u.spoolBytes)}`],
  ["retries", (u) => String(u.retries)],
  ["failed", (u) => String(u.failures)],
  ["batches", (u) => `${u.openBatches} · ${formatBytes(u.bufferedBytes)} / ${formatBytes(u.batchMemoryBudget)}${u.spilledBytes > 0 ? ` · ${formatBytes(u.spilledBytes)} on disk` : ""}`],
  ["last-write", (u) => (u.lastWriteAt ? time(u.lastWriteAt) : "-")],
];

function time(epochMs: number): string {
  return new Date(epochMs).toLocaleTimeString([], { hour12: false });
}

function mean(values: number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

RED.plugins.registerPlugin("s3-egress-monitor", {
  onadd() {
    const t = this._;
    // The latest update of each deployed node, by id.
    const updates: Record<string, SidebarUpdate> = {};
    const rows: Record<string, JQuery> = {};
    const content = $('<div class="s3-egress-monitor"></div>');
    const empty = $('<div class="s3-egress-monitor-empty"></div>').text(t("monitor.empty")).appendTo(content);
    const list = $('<ul class="s3-egress-monitor-list"></ul>').appendTo(content);

    function sinkNodes(): EditorNode[] {
      const nodes: EditorNode[] = [];
      RED.nodes.eachNode((node) => {
        if (node.type === "s3-egress") nodes.push(node);
      });
      return nodes;
    }

    function newRow(id: string): JQuery {
      const row = $('<li class="s3-egress-monitor-row"></li>').attr("data-node-id", id);
      const title = $('<div class="s3-egress-monitor-title"></div>').appendTo(row);
      $('<span class="s3-egress-monitor-health"></span>').appendTo(title);
      $('<span class="s3-egress-monitor-name"></span>').appendTo(title);
      $('<span class="s3-egress-monitor-flow"></span>').appendTo(title);
      const chart = $('<div class="s3-egress-monitor-chart"></div>').appendTo(row);
      const svg = document.createElementNS(SVG, "svg");
      svg.setAttribute("class", "s3-egress-monitor-spark");
      svg.setAttribute("preserveAspectRatio", "none");
      const tooltip = document.createElementNS(SVG, "title");
      tooltip.textContent = t("monitor.sparkline");
      svg.appendChild(tooltip);
      svg.appendChild(document.createElementNS(SVG, "polyline"));
      chart.append(svg);
      $('<span class="s3-egress-monitor-rate"></span>').appendTo(chart);
      const figures = $('<dl class="s3-egress-monitor-figures"></dl>').appendTo(row);
      for (const [name] of FIGURES) {
        $("<dt></dt>").text(t(`monitor.figures.${name}`)).appendTo(figures);
        $("<dd></dd>").attr("data-figure", name).appendTo(figures);
      }
      $('<div class="s3-egress-monitor-error"></div>').appendTo(row);
      row.on("click", () => RED.view.reveal(id));
      return row;
    }

    function drawSparkline(row: JQuery, perSecond: number[]): void {
      const svg = row.find("svg")[0];
      const series = perSecond.map((_value, index) => mean(perSecond.slice(Math.max(0, index - SPARKLINE_SECONDS + 1), index + 1)));
      const width = Math.max(series.length - 1, 1);
      const peak = Math.max(...series, 1);
      svg.setAttribute("viewBox", `0 0 ${width} ${peak}`);
      const points = series.map((value, index) => `${index},${peak - value}`);
      svg.querySelector("polyline")!.setAttribute("points", points.join(" "));
    }

    function fill(row: JQuery, node: EditorNode): void {
      const update = updates[node.id];
      const workspace = RED.nodes.workspace(node.z) || RED.nodes.subflow(node.z);
      row.find(".s3-egress-monitor-name").text(RED.utils.getNodeLabel(node, node.type));
      row.find(".s3-egress-monitor-flow").text(workspace ? workspace.label || workspace.name || "" : "");
      const health = row.find(".s3-egress-monitor-health").removeClass("ok stalled failing");
      if (!update) {
        row.find(".s3-egress-monitor-rate").text(t("monitor.not-deployed"));
        row.find("dd").text("-");
        row.find(".s3-egress-monitor-error").text("");
        drawSparkline(row, [0, 0]);
        return;
      }
      health.addClass(update.health.state).attr("title", t(`monitor.health.${update.health.state}`));
      const rate = mean(update.objectsPerSecond.slice(-RATE_SECONDS));
      row.find(".s3-egress-monitor-rate").text(t("monitor.rate", { rate: rate.toFixed(1) }));
      drawSparkline(row, update.objectsPerSecond);
      for (const [name, read] of FIGURES) row.find(`dd[data-figure="${name}"]`).text(read(update));
      const lastError = update.lastError;
      row.find(".s3-egress-monitor-error").text(lastError ? t("monitor.last-error", { message: lastError.message, time: time(lastError.at) }) : "");
    }

    // One row per s3-egress node of the workspace, in the order of the flows; deployed or not.
    function refresh(): void {
      const nodes = sinkNodes();
      const present = new Set<string>();
      for (const node of nodes) {
        present.add(node.id);
        rows[node.id] = rows[node.id] || newRow(node.id);
        list.append(rows[node.id]);
        fill(rows[node.id], node);
      }
      for (const id of Object.keys(rows)) {
        if (present.has(id)) continue;
        rows[id].remove();
        delete rows[id];
      }
      empty.toggle(nodes.length === 0);
    }

    let refreshPending = false;
    function refreshSoon(): void {
      if (refreshPending) return;
      refreshPending = true;
      setTimeout(() => {
        refreshPending = false;
        refresh();
      }, 100);
    }

    RED.sidebar.addTab({
      id: "s3-egress-monitor",
      label: t("monitor.label"),
      name: t("monitor.name"),
      iconClass: "fa fa-line-chart",
      content,
      enableOnEdit: true,
      onchange: refresh,
    });
    RED.comms.subscribe(`${TOPIC}/#`, (topic, update) => {
      const id = topic.slice(TOPIC.length + 1);
      if (update) updates[id] = update as SidebarUpdate;
      else delete updates[id];
      const node = RED.nodes.node(id);
      if (rows[id] && node) fill(rows[id], node);
      else refreshSoon();
    });
    for (const event of ["nodes:add", "nodes:remove", "nodes:change", "flows:loaded", "workspace:change", "deploy"]) RED.events.on(event, refreshSoon);
  },
});
