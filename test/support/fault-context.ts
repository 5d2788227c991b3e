import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import helper from "node-red-node-test-helper";
import { FaultProxy } from "./fault-proxy";
import { EgressFlow } from "./flow";
import { LocalS3 } from "./s3";

export interface FaultContext {
  s3: LocalS3;
  /** In front of s3: point a flow at proxy.endpoint to script faults. */
  proxy: FaultProxy;
  /** The runtime's user directory (where the spool lives), a fresh one for each test. */
  userDir: string;
}

/**
 * s3rver with a fault proxy in front of it, for the tests of one describe block. After each test
 * the flow is unloaded and the bucket, the proxy's script and the user directory are cleared.
 */
export function faultContext(): FaultContext {
  const context = {} as FaultContext;
  before(async () => {
    context.s3 = await LocalS3.start();
    context.proxy = await FaultProxy.start(context.s3.endpoint);
  });
  after(async () => {
    helper.settings({});
    await context.proxy.stop();
    await context.s3.stop();
  });
  beforeEach(() => {
    context.userDir = mkdtempSync(path.join(tmpdir(), "s3-egress-userdir-"));
    helper.settings({ userDir: context.userDir });
  });
  afterEach(async () => {
    await EgressFlow.unload();
    await context.s3.clear();
    context.proxy.reset();
    rmSync(context.userDir, { recursive: true, force: true });
  });
  return context;
}
