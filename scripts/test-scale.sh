#!/usr/bin/env bash
# Scaling out, tested: three Node-RED runtimes with the packed package behind HAProxy (examples/haproxy.cfg)
# and behind Mosquitto (MQTT 5 shared subscription), one bucket, one runtime killed or stopped mid-run
# and restarted (test/scale). Installs Debian's haproxy and mosquitto when missing. Everything the
# test starts listens on 127.0.0.1 and ends with it; the whole run is bounded by `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v haproxy >/dev/null || ! command -v mosquitto >/dev/null; then
  apt-get update
  # Waits for the dpkg lock rather than failing when another install is under way.
  apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 haproxy mosquitto
fi

npm run build --silent
npm run build:test --silent
started=$SECONDS
# As npm test runs them: a stray rejection fails the run.
timeout 1500 npx mocha --no-config --exit --timeout 600000 --node-option unhandled-rejections=strict '.test-build/scale/**/*.test.js'
echo "test:scale took $((SECONDS - started)) s"
