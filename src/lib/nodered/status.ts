import type { Node, NodeStatus } from "node-red";

/**
 * Shows a node's status at most once per interval: the first change at once, later ones
 * coalesced into one trailing update, so a burst of writes costs a handful of status messages.
 */
export class ThrottledStatus {
  private timer: NodeJS.Timeout | undefined;
  private lastShown = 0;
  private pendingRender = false;

  constructor(
    private readonly node: Node,
    private readonly render: () => NodeStatus,
    private readonly intervalMs = 250,
  ) {}

  update(): void {
    const wait = this.lastShown + this.intervalMs - Date.now();
    if (wait <= 0 && !this.timer) {
      this.show();
      return;
    }
    this.pendingRender = true;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      if (this.pendingRender) this.show();
    }, Math.max(wait, 0));
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private show(): void {
    this.pendingRender = false;
    this.lastShown = Date.now();
    this.node.status(this.render());
  }
}

/** A byte count as a short status text: 512 B, 1.5 KiB, 8.0 MiB, 1.2 GiB. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
