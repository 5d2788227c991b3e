import type { Node, NodeAPI } from "node-red";
import { Spool, type SpoolOptions } from "../delivery/spool";

/**
 * Opens a route's spool and tells the node's user what it found: each damaged record (to the log
 * and to Catch nodes), records left by the other route (`otherRoute`: its name as the editor shows it) and
 * records to resume. A spool that cannot be opened rejects; what that means is the route's to say.
 */
export async function openReportedSpool(RED: NodeAPI, node: Node, directory: string, owns: SpoolOptions["owns"], otherRoute: string): Promise<Spool> {
  const spool = await Spool.open(
    directory,
    (problem) =>
      node.error(RED._("s3-egress.errors.spool-damaged", { problem: `${problem.file} at byte ${problem.offset}: ${problem.problem}` }), {
        _msgid: RED.util.generateId(),
        spool: problem,
      }),
    { owns },
  );
  if (spool.foreign.records > 0) {
    node.warn(RED._("s3-egress.warnings.other-route-records", { count: spool.foreign.records, directory, route: otherRoute }));
  }
  if (spool.pending > 0) node.warn(RED._("s3-egress.warnings.resuming", { count: spool.pending, directory }));
  return spool;
}
