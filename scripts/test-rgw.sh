#!/usr/bin/env bash
# The node-level integration tests against a real S3 implementation: Ceph's RADOS Gateway (Debian's
# Ceph 16), which verifies SigV4, honours If-None-Match and enforces the minimal policy of docs/configuration-and-s3-compatible-stores.md
# (the node writes as a user that may only s3:PutObject and s3:AbortMultipartUpload).
# Installs Debian's Ceph packages when missing, starts a throwaway cluster (scripts/rgw.sh) in a
# temporary folder, runs test/node against it, and stops the cluster whatever the outcome.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v radosgw >/dev/null || ! command -v ceph-mon >/dev/null || ! command -v ceph-osd >/dev/null || ! command -v ceph >/dev/null; then
  apt-get update
  # Waits for the dpkg lock rather than failing when another install is under way.
  apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 radosgw ceph-mon ceph-osd ceph-common
fi

npm run build --silent
npm run build:test --silent

CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/s3-egress-rgw-XXXXXX")
cleanup() {
  scripts/rgw.sh stop "$CLUSTER_DIR"
  rm -rf "$CLUSTER_DIR"
  echo "test:rgw took $SECONDS s"
}
trap cleanup EXIT
started=$SECONDS
eval "$(scripts/rgw.sh start "$CLUSTER_DIR")"
echo "Ceph $(ceph --version | cut -d' ' -f3) RGW answered in $((SECONDS - started)) s at $S3_TEST_ENDPOINT"
# As npm test runs them: a stray rejection fails the run.
npx mocha --no-config --exit --timeout 120000 --node-option unhandled-rejections=strict '.test-build/node/**/*.test.js'
