#!/bin/sh
# Benchmark (not a test): tutti-bench allreduce between two namespace
# "hosts" of the multi-host bed (netbed.sh) whose links are limited to
# MBIT Mbit/s in each direction by tc tbf, once per network transport,
# then busbw as a share of the link. Needs root; run from anywhere:
#
#   tests/multihost/netbed-bench.sh [-B BUILD] [-r MBIT] [-t "ucx ofi"]
#                                   [-a "auto ring"] [-- TUTTI-BENCH OPTIONS]
#
#   -B BUILD  meson build directory (default: build, beside tests/)
#   -r MBIT   link rate (default 1000: 0.125 GB/s)
#   -t LIST   transports, forced with TUTTI_TRANSPORT (default "ucx ofi")
#   -a LIST   allreduce algorithms, forced with TUTTI_ALGO=allreduce:ALGO
#             (default "auto": the library's choice)
#   after --  options for tutti-bench (default: -b 1M -e 64M -f 4 -N 5
#             -w 2 -c 1; below a few MiB the tbf bucket, 4 ms of the rate,
#             flatters the numbers: see netbed.sh)
#
# Each rank runs in its own namespace through tutti-bench's explicit launch
# (--rank R --nranks 2 --id FILE) with TUTTI_HOSTID and TUTTI_SOCKET_IFNAME
# set as the test bed sets them; rank 0's table is printed as is, followed
# by one line per size: busbw of the faster placement, computed from its
# time (the table rounds to 0.01 GB/s), and its share of the link's
# MBIT / 8000 GB/s. For a 2-rank allreduce busbw is the rate at which each
# rank's link carries data in each direction, so 100% is the link's limit,
# which TCP cannot reach: frame and header overhead leave about 95% of it
# to payload. So that the link's real capacity is on record beside tutti's,
# the same bed is then measured with ucx_perftest -t tag_bw over UCX's TCP
# transport (4 MiB messages, one direction), when ucx_perftest is present.
# After each run, the packets the tbf qdiscs dropped during it (both hosts'
# egress and the switch ports' egress) are printed: drops make TCP back off,
# which is how too much data in flight costs bandwidth on a shallow queue.
# The bed is removed on exit, also after ^C.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build
mbit=1000
transports="ucx ofi"
algos=auto

while [ $# -gt 0 ]; do
    case $1 in
    -B) build=$2; shift 2 ;;
    -r) mbit=$2; shift 2 ;;
    -t) transports=$2; shift 2 ;;
    -a) algos=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: $0 [-B BUILD] [-r MBIT] [-t LIST] [-a LIST]" \
            "[-- BENCH OPTIONS]" >&2
       exit 2 ;;
    esac
done
[ $# -gt 0 ] || set -- -b 1M -e 64M -f 4 -N 5 -w 2 -c 1

bench=$build/bench/tutti-bench
[ -x "$bench" ] || { echo "netbed-bench: no $bench (build first)" >&2; exit 1; }
case $mbit in
'' | *[!0-9]*) echo "netbed-bench: bad rate '$mbit'" >&2; exit 2 ;;
esac

tag=ttnb-$$-0
dir=$(mktemp -d "/tmp/$tag.XXXXXX") || exit 1
cleanup() {
    sh "$here/netbed.sh" down "$tag"
    rm -rf -- "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sh "$here/netbed.sh" sweep
sh "$here/netbed.sh" up "$tag" 2 "$mbit" || exit 1
link=$(awk -v m="$mbit" 'BEGIN { printf "%.4f", m / 8000 }')

# rank R TRANSPORT ALGO BENCH-OPTIONS...: rank R of one run, in host R;
# its output goes to $dir/out.R
rank() {
    r=$1
    t=$2
    a=$3
    shift 3
    case $a in auto) ;; *) a=allreduce:$a ;; esac
    TUTTI_HOSTID=$tag-h$r TUTTI_SOCKET_IFNAME=veth$r TUTTI_TRANSPORT=$t \
        TUTTI_ALGO=$a ip netns exec "$tag-h$r" "$bench" allreduce \
        --rank "$r" --nranks 2 --id "$dir/id" "$@" >"$dir/out.$r" 2>&1
}

# drops: packets dropped so far by every tbf qdisc of the bed, summed
drops() {
    for ns in "$tag-h0" "$tag-h1" "$tag-sw"; do
        tc -n "$ns" -s qdisc show 2>/dev/null
    done | awk '/^qdisc tbf/ { t = 1; next }
                /^qdisc/ { t = 0 }
                t && /dropped/ { sub(/,/, "", $7); n += $7 }
                END { print n + 0 }'
}

# one TRANSPORT ALGO BENCH-OPTIONS...: one tutti-bench run and its summary
one() {
    tp=$1
    algo=$2
    shift 2
    echo "== allreduce ($algo), 2 hosts x 1 rank, TUTTI_TRANSPORT=$tp," \
        "links $mbit Mbit/s (tbf) = $link GB/s"
    rm -f "$dir/id"
    d0=$(drops)
    rank 0 "$tp" "$algo" "$@" &
    p0=$!
    rank 1 "$tp" "$algo" "$@" &
    p1=$!
    wait "$p0"; rc0=$?
    wait "$p1"; rc1=$?
    cat "$dir/out.0"
    echo "$tp $algo: the tbf qdiscs dropped $(($(drops) - d0)) packets" \
        "during the run"
    if [ "$rc0" -ne 0 ] || [ "$rc1" -ne 0 ]; then
        echo "netbed-bench: $tp: rank 0 exited $rc0, rank 1 exited $rc1"
        sed 's/^/rank 1: /' "$dir/out.1"
        status=1
        return
    fi
    # rows: size count type redop root time algbw busbw #wrong (twice);
    # 2 ranks: busbw = algbw = size / time
    awk -v link="$link" -v tp="$tp" -v algo="$algo" '
        /^#/ || NF < 13 { next }
        {
            t = $6 < $10 ? $6 : $10
            bw = $1 / t / 1000
            printf "%s %s %10s B: busbw %.4f GB/s = %5.1f%% of the link\n",
                tp, algo, $1, bw, 100 * bw / link
        }' "$dir/out.0"
}

status=0
for tp in $transports; do
    for algo in $algos; do
        one "$tp" "$algo" "$@"
    done
done

# The link by itself: UCX's TCP transport streaming 4 MiB tag messages from
# host 0 to host 1. The client retries until the server listens (bounded).
if command -v ucx_perftest >/dev/null 2>&1; then
    echo "== raw link: ucx_perftest -t tag_bw -s 4194304, UCX_TLS=tcp"
    ip netns exec "$tag-h1" env UCX_TLS=tcp UCX_NET_DEVICES=veth1 \
        timeout 120 ucx_perftest -p 13337 >"$dir/perf.1" 2>&1 &
    i=0
    while [ $i -lt 20 ]; do
        if ip netns exec "$tag-h0" env UCX_TLS=tcp UCX_NET_DEVICES=veth0 \
            timeout 120 ucx_perftest 10.213.0.2 -p 13337 -t tag_bw \
            -s 4194304 -n 40 >"$dir/perf.0" 2>&1; then
            break
        fi
        sleep 0.5
        i=$((i + 1))
    done
    wait
    # Final: iters p50 avg overall bw-avg bw-overall (MB/s of 2^20 B) ...
    awk -v link="$link" '/^Final:/ {
            bw = $7 * 1048576 / 1e9
            printf "raw link: %.4f GB/s = %5.1f%% of the link\n", bw,
                100 * bw / link
            found = 1
        }
        END { if (!found) print "raw link: ucx_perftest failed" }' \
        "$dir/perf.0"
fi
exit $status
