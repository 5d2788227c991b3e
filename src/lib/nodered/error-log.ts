import type { Node, NodeMessage } from "node-red";
import { InputError } from "../core/errors";

/** What this file needs of a node's flow in Node-RED: it hands an error and its msg to the Catch nodes in scope. */
interface CatchingFlow {
  handleError(node: Node, error: unknown, msg: NodeMessage): boolean;
}

/**
 * Node-RED lists an uncaught Error in the debug sidebar as a collapsed object whose message is cut
 * after about 30 characters. Bad input and S3 errors explain themselves in their message: Catch
 * nodes still get the error itself (message, code, stack), while the log and the debug sidebar get
 * its message, whole (the sidebar shows up to 80 characters uncollapsed).
 */
export function logErrorsAsText(node: Node): void {
  const logError = node.error.bind(node);
  node.error = (logMessage: unknown, msg?: NodeMessage) => {
    const flow = (node as unknown as { _flow?: Partial<CatchingFlow> })._flow;
    const explained = logMessage instanceof InputError || (logMessage instanceof Error && logMessage.name === "S3Error");
    if (!explained || typeof flow?.handleError !== "function") {
      logError(logMessage, msg);
      return;
    }
    const caught = msg !== undefined && msg !== null && typeof msg === "object" && flow.handleError(node, logMessage, msg);
    if (!caught) logError(logMessage.message);
  };
}
