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
