import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type NodeRedProcess, startNodeRedProcess } from "../support/packed";

const ROOT = path.join(__dirname, "..", "..");
/** bcrypt of "preview-test", the password of both users of this throwaway runtime. */
const PASSWORD_HASH = "$2b$08$cZC2aYya3M85NY0uHMvtDOjLc045L0TqE9UwNm7qEY9y0K1CbMeqG";
const SECRET_NAME = "S3_EGRESS_PREVIEW_SECRET";

/** A preview request whose stream group comes from `source`. */
function previewBody(streamGroup: string, streamGroupType: string): Record<string, unknown> {
  return {
    node: { input: "messages", streamGroup, streamGroupType, batchId: "b", batchIdType: "str", messageId: "m", messageIdType: "str" },
    msg: { stream: "telemetry", deviceId: "d1", payload: 1 },
  };
}

// The preview runs inside the runtime and evaluates env and JSONata sources: in a real Node-RED
// with adminAuth (the test helper grants everything), only users who may change flows get it.
describe("the preview route in a secured Node-RED (adminAuth)", function () {
  this.timeout(120_000);
  let userDir: string;
  let red: NodeRedProcess | undefined;
  let previousSecret: string | undefined;

  const token = async (username: string, scope: string): Promise<string> => {
    const response = await fetch(`${red!.url}/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ client_id: "node-red-admin", grant_type: "password", scope, username, password: "preview-test" }),
    });
    assert.equal(response.status, 200, `token for ${username}`);
    return ((await response.json()) as { access_token: string }).access_token;
  };
  const preview = (body: unknown, bearer?: string) =>
    fetch(`${red!.url}/s3-egress/preview`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
      body: JSON.stringify(body),
    });

  before(async () => {
    userDir = mkdtempSync(path.join(tmpdir(), "s3-egress-secured-"));
    // The package as the user directory would hold it after an install: here, this working tree.
    mkdirSync(path.join(userDir, "node_modules", "@iot-sinks"), { recursive: true });
    symlinkSync(ROOT, path.join(userDir, "node_modules", "@iot-sinks", "node-red-s3-egress"), "dir");
    writeFileSync(path.join(userDir, "package.json"), JSON.stringify({ name: "node-red-project", private: true }));
    previousSecret = process.env[SECRET_NAME];
    process.env[SECRET_NAME] = "do-not-show";
    red = await startNodeRedProcess(userDir, {
      adminAuth: {
        type: "credentials",
        users: [
          { username: "admin", password: PASSWORD_HASH, permissions: "*" },
          { username: "viewer", password: PASSWORD_HASH, permissions: "read" },
        ],
      },
    });
  });
  after(async () => {
    await red?.stop();
    if (previousSecret === undefined) delete process.env[SECRET_NAME];
    else process.env[SECRET_NAME] = previousSecret;
    rmSync(userDir, { recursive: true, force: true });
  });

  it("refuses anonymous and read-only users, so they cannot read the environment through env or $env()", async () => {
    assert.equal((await preview(previewBody(SECRET_NAME, "env"))).status, 401);
    const viewer = await token("viewer", "read");
    for (const body of [previewBody(SECRET_NAME, "env"), previewBody(`$env("${SECRET_NAME}")`, "jsonata")]) {
      const response = await preview(body, viewer);
      assert.equal(response.status, 401);
      assert.doesNotMatch(await response.text(), /do-not-show/);
    }
  });

  it("serves users who may change flows (who could deploy a flow reading the environment anyway)", async () => {
    const admin = await token("admin", "*");
    const response = await preview(previewBody(SECRET_NAME, "env"), admin);
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { key: string }).key, "messages/do-not-show/telemetry/d1/b/m");
  });

  it("bounds the work: a JSONata loop over millions of elements stops at the time limit, an oversized sample is refused", async () => {
    const admin = await token("admin", "*");
    const looping = await (await preview(previewBody("$string($count([1..3000000].($ * 2)))", "jsonata"), admin)).json();
    assert.deepEqual(looping, {
      field: "",
      error: "the JSONata expression ran longer than the preview's 250 ms: $string($count([1..3000000].($ * 2)))",
    });
    const big = { ...previewBody("g", "str"), msg: { stream: "s", deviceId: "d", payload: "x".repeat(300 * 1024) } };
    assert.deepEqual(await (await preview(big, admin)).json(), {
      field: "msg",
      error: "the preview takes settings and sample msgs of at most 256 KiB, not 301 KiB",
    });
    // And the runtime answers as before.
    assert.equal((await preview(previewBody("g", "str"), admin)).status, 200);
  });
});
