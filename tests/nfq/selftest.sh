#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Kernel-level test of nfq/ (queue.c + ruleset.c), root only, in network
# namespaces (never the caller's own):
#
#   egx-nfqc (client) 198.51.100.10/24  veth  198.51.100.1/24 (server) egx-nfqs
#
# The client namespace gets the host-mode ruleset and nfq_selftest --run as
# the decider (TCP to port 9 denied, SYN passed, the rest allowed, UDP to
# port 7 held 300 ms then allowed). Checks: fail closed with no reader;
# allowed flow works and is then carried by the ct mark (few packets
# queued for a 5 MB transfer); denied flow refused fast with DENY ct mark;
# uid reported; held verdict delivered; reader killed: new flows fail,
# established transfer finishes; --delete removes everything.
#
# usage: tests/nfq/selftest.sh [path/to/nfq_selftest]
set -u

BIN=${1:-${NFQ_SELFTEST:-}}
if [ -z "$BIN" ]; then
	for b in build/tests/nfq/nfq_selftest ../build/tests/nfq/nfq_selftest; do
		[ -x "$b" ] && BIN=$b && break
	done
fi
[ -n "$BIN" ] && [ -x "$BIN" ] || { echo "usage: $0 path/to/nfq_selftest" >&2; exit 2; }
BIN=$(readlink -f "$BIN")
[ "$(id -u)" = 0 ] || { echo "selftest.sh: needs root" >&2; exit 77; }
PY=/usr/bin/python3
for t in ip nft curl conntrack dig dnsmasq $PY; do
	command -v "$t" >/dev/null || { echo "selftest.sh: missing $t" >&2; exit 77; }
done

# Sanitizer reports (ASan, LSan, UBSan builds) of every nfq_selftest run go
# to files of their own, checked at the end: a report fails the self-test
# even when the process that wrote it exited 0 or was never waited for.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=__TMP__/asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=__TMP__/ubsan"

C=egx-nfqc-$$
S=egx-nfqs-$$
GC=egx-nfqgc-$$ # gateway lab: client, gateway, server
GW=egx-nfqgw-$$
GS=egx-nfqgs-$$
NSS=("$C" "$S" "$GC" "$GW" "$GS")
SRV=198.51.100.1
CLI=198.51.100.10
TMP=$(mktemp -d /tmp/egx-nfq.XXXXXX)
ASAN_OPTIONS=${ASAN_OPTIONS//__TMP__/$TMP}
UBSAN_OPTIONS=${UBSAN_OPTIONS//__TMP__/$TMP}
PIDS=()
FAILS=0
PASSES=0

cleanup() {
	# background jobs are started with `ip netns exec` directly (it execs,
	# so $! is the program); anything else left in our namespaces is ours
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for n in "${NSS[@]}"; do
		for p in $(ip netns pids "$n" 2>/dev/null); do kill "$p" 2>/dev/null; done
	done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for n in "${NSS[@]}"; do ip netns del "$n" 2>/dev/null; done
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT INT TERM

ok() { PASSES=$((PASSES + 1)); echo "ok   - $*"; }
bad() { FAILS=$((FAILS + 1)); echo "FAIL - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
inc() { ip netns exec "$C" "$@"; }
ins() { ip netns exec "$S" "$@"; }

# poll CMD until it succeeds or SECONDS pass (no fixed sleeps)
wait_for() {
	local secs=$1; shift
	local end=$((SECONDS + secs))
	until "$@"; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.05
	done
}

now_ms() { date +%s%3N; }

# ------------------------------------------------------------------ lab
ip netns add "$C" && ip netns add "$S" || { echo "cannot create namespaces" >&2; exit 1; }
ip link add veth-c netns "$C" type veth peer name veth-s netns "$S"
inc ip link set lo up; ins ip link set lo up
inc ip addr add $CLI/24 dev veth-c; ins ip addr add $SRV/24 dev veth-s
inc ip link set veth-c up; ins ip link set veth-s up
inc ip addr add 2001:db8::10/64 dev veth-c nodad; ins ip addr add 2001:db8::1/64 dev veth-s nodad

mkdir -p "$TMP/www"
head -c $((5 * 1024 * 1024)) /dev/urandom >"$TMP/www/big"
echo hello >"$TMP/www/small"
ip netns exec "$S" $PY -m http.server --bind $SRV --directory "$TMP/www" 80 >/dev/null 2>&1 &
PIDS+=($!)
ip netns exec "$S" $PY -m http.server --bind $SRV --directory "$TMP/www" 9 >/dev/null 2>&1 &
PIDS+=($!)
ip netns exec "$S" $PY -m http.server --bind $SRV --directory "$TMP/www" 10 >/dev/null 2>&1 &
PIDS+=($!)
ip netns exec "$S" $PY -c '
import http.server, socket, functools, sys
class S6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
S6(("2001:db8::1", 80), h).serve_forever()
' "$TMP/www" >/dev/null 2>&1 &
PIDS+=($!)
ip netns exec "$S" $PY -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("'$SRV'", 7))
s.settimeout(60)
d, a = s.recvfrom(2048)
open(sys.argv[1], "ab").write(d + b"\n")
' "$TMP/udp7" &
PIDS+=($!)

get() { # get PORT PATH OUT [curl args...]
	local port=$1 path=$2 out=$3; shift 3
	inc curl -sS -o "$out" "$@" "http://$SRV:$port/$path" 2>>"$TMP/curl.err"
}
check "lab: server reachable on 80, 9, 10 and [v6]:80 before any rule" \
	wait_for 10 eval 'get 80 small /dev/null --max-time 1 && get 9 small /dev/null --max-time 1 &&
		get 10 small /dev/null --max-time 1 &&
		inc curl -sS -o /dev/null --max-time 1 -g "http://[2001:db8::1]/small"'

# -------------------------------------------------------------- ruleset
if inc "$BIN" --apply host --backend nft 2>"$TMP/nft.err"; then
	echo "note - kernel has native nft queue; backend nft applied"
	inc "$BIN" --delete >/dev/null
else
	check "backend nft refused with a clear message" \
		grep -q "no nft queue support (CONFIG_NFT_QUEUE); use --backend xt or auto" "$TMP/nft.err"
fi
check "apply host ruleset (auto backend)" inc "$BIN" --apply host --backend auto --dns4 127.0.0.1 --dns6 ::1
inc "$BIN" --detect | sed "s/^/     detect: /"
check "table inet egressd present" eval "inc nft list table inet egressd >/dev/null"
check "no bypass anywhere" eval "! inc nft list ruleset 2>/dev/null | grep -q bypass"

# nobody reads queue 0 yet: new flows must fail
t0=$(now_ms)
if get 80 small /dev/null --connect-timeout 2 --max-time 3; then
	bad "fail closed with no reader"
else
	ok "fail closed with no reader ($(($(now_ms) - t0)) ms)"
fi

# --------------------------------------------------------------- reader
ip netns exec "$C" "$BIN" --run --queue 0 --hold-ms 300 --ready "$TMP/ready" >"$TMP/run.log" 2>&1 &
RUNPID=$!
PIDS+=($RUNPID)
check "reader bound queue 0" wait_for 5 test -e "$TMP/ready"

qseq() { # kernel's id_sequence for queue 0 in the client namespace
	inc awk '$1 == 0 { print $8 }' /proc/net/netfilter/nfnetlink_queue
}
s0=$(qseq)
n0=$(grep -c ' len ' "$TMP/run.log")
check "allowed 5 MB transfer works" get 80 big "$TMP/big.out" --max-time 30
check "transfer is complete and intact" cmp -s "$TMP/big.out" "$TMP/www/big"
n1=$(grep -c ' len ' "$TMP/run.log")
s1=$(qseq)
echo "     packets queued for the transfer: reader $((n1 - n0)), kernel id_sequence $((s1 - s0))"
check "only the first packets were queued (< 20)" test $((n1 - n0)) -lt 20 -a $((n1 - n0)) -gt 0
check "conntrack mark ALLOW on the flow" eval \
	"inc conntrack -L -p tcp --dport 80 -m 0x01000000/0x0f000000 2>/dev/null | grep -q 'dport=80'"
check "PASS verdict given (SYN) and ALLOW after" eval \
	"grep -q 'verdict PASS' '$TMP/run.log' && grep -q 'verdict ALLOW' '$TMP/run.log'"
check "socket uid reported in host mode (uid 0)" grep -q ' uid 0$' "$TMP/run.log"

t0=$(now_ms)
get 9 small /dev/null --connect-timeout 3 --max-time 4
rc=$?
dt=$(($(now_ms) - t0))
check "denied flow refused by reset (curl rc $rc = 7, $dt ms)" test $rc -eq 7 -a $dt -lt 1500
check "DENY verdict given" grep -q 'verdict DENY' "$TMP/run.log"

# port 10: handshake passes, the first payload is denied: reset, and the
# DENY ct mark stays on the (confirmed) connection
get 10 small /dev/null --connect-timeout 3 --max-time 4
rc=$?
check "flow denied on its first payload is reset (curl rc $rc = 56)" test $rc -eq 56
check "conntrack mark DENY on that flow" eval \
	"inc conntrack -L -p tcp --dport 10 -m 0x02000000/0x0f000000 2>/dev/null | grep -q 'dport=10'"

inc $PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"held-datagram", ("'$SRV'", 7))'
check "held UDP datagram delivered after its late verdict" wait_for 5 grep -qs held-datagram "$TMP/udp7"
check "reader logged the hold" grep -q ' held 300 ms' "$TMP/run.log"

check "IPv6 flow allowed (ND passes, queue on ip6)" \
	inc curl -sS -o "$TMP/v6.out" --max-time 5 -g "http://[2001:db8::1]/small"
check "IPv6 conntrack mark ALLOW" eval \
	"inc conntrack -L -f ipv6 -p tcp --dport 80 -m 0x01000000/0x0f000000 2>/dev/null | grep -q 'dport=80'"

# burst: 3000 datagrams queued while the first is held: thousands of
# packets outstanding at once, every one answered exactly once
inc $PY -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 32, 16 << 20)  # SO_SNDBUFFORCE: queued skbs hold send memory
s.bind(("'$CLI'", 40007))
for i in range(3000):
    s.sendto(b"burst %d" % i, ("'$SRV'", 7))'
answered() { [ "$(grep -c ' len ' "$TMP/run.log")" = "$(grep -c ' verdict ' "$TMP/run.log")" ]; }
check "burst: every queued packet got its verdict" wait_for 20 answered
nb=$(grep -c ' held 300 ms' "$TMP/run.log")
check "burst: many held at once ($nb > 1000)" test "$nb" -gt 1000

# DNS redirect (chain dns): a query to any server lands on 127.0.0.1:53
inc ip route add default via $SRV
ip netns exec "$C" dnsmasq --keep-in-foreground --bind-interfaces --listen-address=127.0.0.1 \
	--port=53 --no-resolv --no-hosts --user=root --pid-file="$TMP/dnsmasq-host.pid" \
	--address=/test.example/192.0.2.7 >/dev/null 2>&1 &
PIDS+=($!)
check "host DNS redirect: query to 203.0.113.53 answered by the 127.0.0.1 listener" wait_for 5 \
	eval "inc dig +short +time=1 +tries=1 @203.0.113.53 test.example A | grep -qx 192.0.2.7"

# established transfer survives the reader's death; new flows do not
rm -f "$TMP/slow.out"
ip netns exec "$C" curl -sS -o "$TMP/slow.out" --limit-rate 1M --max-time 30 "http://$SRV:80/big" &
CURLPID=$!
PIDS+=($CURLPID)
check "slow transfer started" wait_for 5 eval "[ -s '$TMP/slow.out' ]"
kill -TERM $RUNPID
check "reader exited" wait_for 5 eval "! kill -0 $RUNPID 2>/dev/null"
wait $RUNPID
rc=$?
check "reader exited 0 on SIGTERM (status $rc)" test $rc -eq 0
grep '^stats' "$TMP/run.log" | sed 's/^/     /'
check "reader saw no verdict errors, kernel dropped nothing, nothing left outstanding" \
	grep -q 'queue_dropped 0 user_dropped 0 verdict_errors 0 bad 0 outstanding 0' "$TMP/run.log"
if get 80 small /dev/null --connect-timeout 2 --max-time 3; then
	bad "new flow fails once the reader is gone"
else
	ok "new flow fails once the reader is gone"
fi
wait $CURLPID
check "established transfer finished after the reader died" test $? -eq 0
check "and is intact" cmp -s "$TMP/slow.out" "$TMP/www/big"

# --------------------------------------------------------------- delete
check "delete" eval "inc '$BIN' --delete | grep -q deleted"
check "no egressd table left" eval "! inc nft list tables | grep -q egressd"
check "delete again: nothing to delete" eval "inc '$BIN' --delete | grep -q 'nothing to delete'"
check "traffic to port 9 flows again" get 9 small /dev/null --max-time 3

# ---------------------------------------------------------- gateway lab
#   egx-nfqgc 198.51.100.10 -- 198.51.100.1 [egx-nfqgw] 203.0.113.1 -- 203.0.113.10 egx-nfqgs
# Ruleset in the gateway namespace, forward hook, inside = veth-in, two
# queues (0-1, two readers), xt queue rules forced into ip/ip6 T_q tables.
echo "# gateway mode"
GSRV=203.0.113.10
gc() { ip netns exec "$GC" "$@"; }
gw() { ip netns exec "$GW" "$@"; }
gs() { ip netns exec "$GS" "$@"; }
ip netns add "$GC" && ip netns add "$GW" && ip netns add "$GS" || { bad "gateway namespaces"; exit 1; }
ip link add veth-c netns "$GC" type veth peer name veth-in netns "$GW"
ip link add veth-out netns "$GW" type veth peer name veth-s netns "$GS"
for n in "$GC" "$GW" "$GS"; do ip netns exec "$n" ip link set lo up; done
gc ip addr add 198.51.100.10/24 dev veth-c; gc ip link set veth-c up
gw ip addr add 198.51.100.1/24 dev veth-in; gw ip link set veth-in up
gw ip addr add 203.0.113.1/24 dev veth-out; gw ip link set veth-out up
gs ip addr add $GSRV/24 dev veth-s; gs ip link set veth-s up
gc ip route add default via 198.51.100.1
gs ip route add default via 203.0.113.1
gw sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$GS" $PY -m http.server --bind $GSRV --directory "$TMP/www" 80 >/dev/null 2>&1 &
PIDS+=($!)
ip netns exec "$GS" $PY -m http.server --bind $GSRV --directory "$TMP/www" 9 >/dev/null 2>&1 &
PIDS+=($!)
ip netns exec "$GC" $PY -m http.server --bind 198.51.100.10 --directory "$TMP/www" 80 >/dev/null 2>&1 &
PIDS+=($!)
ip netns exec "$GW" dnsmasq --keep-in-foreground --bind-interfaces --listen-address=198.51.100.1 \
	--port=53 --no-resolv --no-hosts --user=root --pid-file="$TMP/dnsmasq-gw.pid" \
	--address=/test.example/192.0.2.8 >/dev/null 2>&1 &
PIDS+=($!)
gget() { local port=$1 path=$2 out=$3; shift 3
	gc curl -sS -o "$out" "$@" "http://$GSRV:$port/$path" 2>>"$TMP/curl.err"; }
check "gw lab: routed both ways before any rule" wait_for 10 \
	eval 'gget 80 small /dev/null --max-time 1 && gget 9 small /dev/null --max-time 1 &&
		gs curl -s -o /dev/null --max-time 1 http://198.51.100.10/small'

check "apply gateway ruleset (xt, 2 queues, ip/ip6 T_q tables)" \
	env EGRESSD_TEST_XT_TABLES=1 ip netns exec "$GW" "$BIN" --apply gateway --inside veth-in \
	--threads 2 --dns4 198.51.100.1
check "inet egressd and ip/ip6 egressd_q tables present" eval \
	"[ \$(gw nft list tables 2>/dev/null | grep -cE '^table (inet egressd|ip egressd_q|ip6 egressd_q)\$') = 3 ]"
check "gw: fail closed with no reader" eval '! gget 80 small /dev/null --connect-timeout 2 --max-time 3'

ip netns exec "$GW" "$BIN" --run --queue 0 --ready "$TMP/gready0" >"$TMP/grun0.log" 2>&1 &
GRUN0=$!; PIDS+=($GRUN0)
ip netns exec "$GW" "$BIN" --run --queue 1 --ready "$TMP/gready1" >"$TMP/grun1.log" 2>&1 &
GRUN1=$!; PIDS+=($GRUN1)
check "gw: readers bound queues 0 and 1" wait_for 5 eval "[ -e '$TMP/gready0' ] && [ -e '$TMP/gready1' ]"
check "gw: allowed 5 MB transfer works" gget 80 big "$TMP/gbig.out" --max-time 30
check "gw: intact" cmp -s "$TMP/gbig.out" "$TMP/www/big"
gq=$(cat "$TMP/grun0.log" "$TMP/grun1.log" | grep -c ' len ')
echo "     packets queued for the transfer: $gq (queue 0: $(grep -c ' len ' "$TMP/grun0.log"), queue 1: $(grep -c ' len ' "$TMP/grun1.log"))"
check "gw: only the first packets were queued (0 < $gq < 20)" test "$gq" -gt 0 -a "$gq" -lt 20
check "gw: ct mark ALLOW in the gateway" eval \
	"gw conntrack -L -p tcp --dport 80 -m 0x01000000/0x0f000000 2>/dev/null | grep -q 'dport=80'"
gu=$(cat "$TMP/grun0.log" "$TMP/grun1.log" | grep -c ' len .* uid -1$')
check "gw: no socket uid in the forward hook (uid -1 on all $gq)" test "$gu" -eq "$gq"
t0=$(now_ms)
gget 9 small /dev/null --connect-timeout 3 --max-time 4
rc=$?
dt=$(($(now_ms) - t0))
check "gw: denied flow reset by the gateway (curl rc $rc = 7, $dt ms)" test $rc -eq 7 -a $dt -lt 1500
check "gw: DENY verdict given" eval "cat '$TMP/grun0.log' '$TMP/grun1.log' | grep -q 'verdict DENY'"
check "gw: new connection from outside dropped" eval '! gs curl -s -o /dev/null --connect-timeout 2 http://198.51.100.10/small'
check "gw: DNS from inside redirected to the listener" wait_for 5 \
	eval "gc dig +short +time=1 +tries=1 @$GSRV test.example A | grep -qx 192.0.2.8"
kill -TERM $GRUN0 $GRUN1
wait $GRUN0
rc0=$?
wait $GRUN1
rc1=$?
check "gw: both readers exited 0 on SIGTERM (status $rc0, $rc1)" test $rc0 -eq 0 -a $rc1 -eq 0
check "gw: no verdict errors" eval "grep -q 'verdict_errors 0 ' '$TMP/grun0.log' && grep -q 'verdict_errors 0 ' '$TMP/grun1.log'"
check "gw: delete removes all three tables" eval "gw '$BIN' --delete | grep -q deleted && ! gw nft list tables | grep -q egressd"
check "gw: port 9 reachable again" gget 9 small /dev/null --max-time 3

reports=$(ls "$TMP"/asan.* "$TMP"/ubsan.* 2>/dev/null)
if [ -z "$reports" ]; then
	ok "no sanitizer report from any nfq_selftest run"
else
	bad "sanitizer report(s) from nfq_selftest:"
	for f in $reports; do echo "# $f"; sed 's/^/#   /' "$f" | head -n 60; done
fi

echo "selftest: $PASSES passed, $FAILS failed"
[ $FAILS -eq 0 ]
