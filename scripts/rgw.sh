#!/usr/bin/env bash
# A throwaway Ceph cluster with an S3 endpoint, for tests against a real S3 implementation:
# one ceph-mon, one ceph-osd on memstore (RAM, capped), one radosgw, all on 127.0.0.1, all in DIR.
#
#   scripts/rgw.sh start DIR   starts it, creates the bucket, its owner and a writer that may only
#                              s3:PutObject and s3:AbortMultipartUpload (the minimal policy of docs/configuration-and-s3-compatible-stores.md),
#                              and prints the endpoint and keys as `export` lines (for eval)
#   scripts/rgw.sh stop DIR    stops the daemons that `start DIR` started (by their pid files), nothing else
#
# Needs Debian's radosgw ceph-mon ceph-osd ceph-common (npm run test:rgw installs them), curl and node.
# No cephx between the daemons (loopback only, thrown away after the run); radosgw still verifies SigV4.
set -eEuo pipefail

BUCKET=test-bucket
STORAGE_CLASSES="STANDARD_IA ONEZONE_IA GLACIER"
# Long enough for a cold start on a busy 2-core machine; a fresh cluster usually answers in 15-20 s.
START_TIMEOUT_S=180

usage() {
  echo "usage: $0 start|stop DIR" >&2
  exit 2
}

[ $# -eq 2 ] || usage
COMMAND=$1
DIR=$(realpath -m "$2")
CONF="$DIR/ceph.conf"

log() { echo "rgw: $*" >&2; }

# A port the kernel hands out as free on 127.0.0.1 right now.
free_port() {
  node -e 'const s = require("node:net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# Random keys in the shape S3 uses: a 20-character access key id, a 40-character secret.
random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

ceph_cli() { ceph -c "$CONF" --connect-timeout 30 "$@"; }

# The pid in DIR/run/NAME.pid when that process is still one of this cluster's daemons
# (its command line names this cluster's ceph.conf): a stale pid file never stops anything else.
daemon_pid() {
  local file="$DIR/run/$1.pid" pid command_line
  [ -f "$file" ] || return 1
  pid=$(cat "$file")
  command_line=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $command_line == *" -c $CONF "* ]] || return 1
  echo "$pid"
}

stop_cluster() {
  local name pid
  # radosgw first, the osd, then the monitor, so none waits on a peer that is gone.
  for name in client.rgw osd.0 mon.a; do
    pid=$(daemon_pid "$name") || continue
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do
      [ -d "/proc/$pid" ] || break
      sleep 0.2
    done
    # One still there after 10 s is killed: its data is thrown away anyway.
    [ -d "/proc/$pid" ] && kill -KILL "$pid" 2>/dev/null
    log "stopped $name (pid $pid)"
  done
}

# Fails with the end of the daemons' logs when radosgw does not answer in time.
wait_for_s3() {
  local endpoint=$1 started=$SECONDS
  until curl -sf -o /dev/null "$endpoint/"; do
    if ((SECONDS - started > START_TIMEOUT_S)); then
      log "radosgw did not answer on $endpoint within ${START_TIMEOUT_S}s; the logs end with:"
      tail -n 20 "$DIR"/log/*.log >&2 || true
      return 1
    fi
    sleep 0.5
  done
}

# One S3 request signed with SigV4 by curl; fails unless S3 answers 2xx. curl 7.88 signs the hash of
# the body without sending it (RGW then takes the payload as unsigned): say UNSIGNED-PAYLOAD outright.
# `?policy=`, not `?policy`: curl 7.88 signs a bare query name wrongly.
s3_request() {
  local keys=$1 method=$2 url=$3 body=${4:-}
  local args=(-sS --fail-with-body -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$keys" -X "$method" "$url")
  [ -n "$body" ] && args+=(-H "content-type: application/json" --data-binary "$body")
  local answer
  answer=$(curl "${args[@]}") || {
    log "$method $url failed: $answer"
    return 1
  }
}

start_cluster() {
  if [ -e "$DIR/ceph.conf" ]; then
    log "$DIR already holds a cluster; stop it and remove the folder first"
    exit 1
  fi
  mkdir -p "$DIR"/{run,log,mon,osd}
  local fsid mon_port rgw_port
  fsid=$(cat /proc/sys/kernel/random/uuid)
  mon_port=$(free_port)
  rgw_port=$(free_port)
  cat >"$CONF" <<CONF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_port]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
# No cephx: then every messenger mode must be crc (with "secure" radosgw loops on auth errors).
auth cluster required = none
auth service required = none
auth client required = none
ms cluster mode = crc
ms service mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms mon client mode = crc
# One osd: pools of one replica, few placement groups, no balancing across hosts.
mon allow pool size one = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon warn on pool no redundancy = false
run dir = $DIR/run
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
mon data = $DIR/mon
osd data = $DIR/osd
osd objectstore = memstore
memstore device bytes = $((1024 * 1024 * 1024))

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
CONF

  log "starting ceph-mon on 127.0.0.1:$mon_port"
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" -i a --mkfs --monmap "$DIR/monmap"
  ceph-mon -c "$CONF" -i a

  log "starting ceph-osd (memstore)"
  local osd_uuid
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  ceph_cli osd new "$osd_uuid" >/dev/null
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" 2>>"$DIR/log/osd.0.start.log"
  # Its first words before it detaches ("Falling back to public interface") are no news.
  ceph-osd -c "$CONF" -i 0 2>>"$DIR/log/osd.0.start.log"

  local owner_key owner_secret writer_key writer_secret
  owner_key=$(random_hex 10 | tr a-f A-F)
  owner_secret=$(random_hex 20)
  writer_key=$(random_hex 10 | tr a-f A-F)
  writer_secret=$(random_hex 20)
  # The first radosgw-admin call also creates the default zone and zonegroup.
  radosgw-admin -c "$CONF" user create --uid owner --display-name "bucket owner" --access-key "$owner_key" --secret-key "$owner_secret" >/dev/null
  radosgw-admin -c "$CONF" user create --uid writer --display-name "s3-egress writer" --access-key "$writer_key" --secret-key "$writer_secret" >/dev/null
  # RGW refuses a storage class its placement target does not name (InvalidArgument): name the
  # ones the tests store, on the same pool (radosgw reads them when it starts).
  local storage_class
  for storage_class in $STORAGE_CLASSES; do
    radosgw-admin -c "$CONF" zonegroup placement add --rgw-zonegroup default --placement-id default-placement --storage-class "$storage_class" >/dev/null
    radosgw-admin -c "$CONF" zone placement add --rgw-zone default --placement-id default-placement --storage-class "$storage_class" --data-pool default.rgw.buckets.data >/dev/null
  done

  log "starting radosgw on 127.0.0.1:$rgw_port"
  radosgw -c "$CONF" -n client.rgw
  local endpoint="http://127.0.0.1:$rgw_port"
  wait_for_s3 "$endpoint"

  s3_request "$owner_key:$owner_secret" PUT "$endpoint/$BUCKET"
  s3_request "$owner_key:$owner_secret" PUT "$endpoint/$BUCKET?policy=" "$(bucket_policy)"
  log "ready: $endpoint, bucket $BUCKET"
  cat <<ENV
export S3_TEST_ENDPOINT=$endpoint
export S3_TEST_BUCKET=$BUCKET
export S3_TEST_OWNER_ACCESS_KEY_ID=$owner_key
export S3_TEST_OWNER_SECRET_ACCESS_KEY=$owner_secret
export S3_TEST_WRITER_ACCESS_KEY_ID=$writer_key
export S3_TEST_WRITER_SECRET_ACCESS_KEY=$writer_secret
ENV
}

# The writer gets the minimal policy of docs/configuration-and-s3-compatible-stores.md and nothing more. RGW makes the writer the owner of
# what it writes (AWS makes the bucket owner the owner): so the owner is allowed everything in the
# bucket, and the writer is denied all else, its own objects included. RGW 16 ignores a statement
# with NotAction alone, hence "Action": "s3:*" beside it.
bucket_policy() {
  cat <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "WriterWritesOnly",
      "Effect": "Allow",
      "Principal": { "AWS": ["arn:aws:iam:::user/writer"] },
      "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
      "Resource": ["arn:aws:s3:::$BUCKET/*"]
    },
    {
      "Sid": "WriterNothingElse",
      "Effect": "Deny",
      "Principal": { "AWS": ["arn:aws:iam:::user/writer"] },
      "Action": ["s3:*"],
      "NotAction": ["s3:PutObject", "s3:AbortMultipartUpload"],
      "Resource": ["arn:aws:s3:::$BUCKET", "arn:aws:s3:::$BUCKET/*"]
    },
    {
      "Sid": "OwnerReadsAll",
      "Effect": "Allow",
      "Principal": { "AWS": ["arn:aws:iam:::user/owner"] },
      "Action": ["s3:*"],
      "Resource": ["arn:aws:s3:::$BUCKET", "arn:aws:s3:::$BUCKET/*"]
    }
  ]
}
JSON
}

case "$COMMAND" in
start)
  # A failed start leaves nothing running.
  trap 'stop_cluster' ERR
  start_cluster
  ;;
stop) stop_cluster ;;
*) usage ;;
esac
