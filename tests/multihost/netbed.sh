#!/bin/sh
# The multi-host test bed's network: K network namespaces ("hosts"), each
# joined by a veth pair to one bridge that lives in a namespace of its own
# (the "switch"), so that nothing touches the root namespace's links,
# addresses or routes. Tests drive it through netbed.c; netbed-bench.sh
# uses it directly. Needs root and iproute2.
#
#   netbed.sh up TAG K [MBIT]   create hosts 0..K-1; MBIT: tbf rate limit
#                               on both directions of every host link
#   netbed.sh link TAG H up|down  plug or pull host H's cable at the switch
#   netbed.sh down TAG          delete everything TAG made (idempotent)
#   netbed.sh sweep             delete the beds of creators that are dead
#
# TAG is ttnb-<creator pid>-<seq> (<seq>: digits). For TAG, host H is
# namespace TAG-hH with interface vethH at 10.213.<seq % 256>.<H + 1>/24
# (lo up, no other route: the /24 is all a host reaches); its cable's
# switch end is portH on bridge br0 in namespace TAG-sw. `up` undoes what
# it made when it fails; it exits 77 when network namespaces cannot be
# made here (not root, no iproute2, no permission), 1 on other errors.
# `sweep` deletes the namespaces whose creator pid no longer runs (after a
# crash or a killed test), killing the processes left inside them, and the
# creator's scratch directories /tmp/TAG.* (netbed.c keeps id files there).
set -u

PREFIX=ttnb
SUBNET=10.213

die() {
    echo "netbed: $*" >&2
    exit 1
}

# check_tag TAG: only names of our own pattern are ever deleted.
check_tag() {
    case $1 in
    "$PREFIX"-*-*) ;;
    *) die "bad tag '$1' (want $PREFIX-<pid>-<seq>)" ;;
    esac
    rest=${1#"$PREFIX"-}
    pid=${rest%%-*}
    seq=${rest#*-}
    case $pid$seq in
    *[!0-9]*) die "bad tag '$1' (want $PREFIX-<pid>-<seq>)" ;;
    esac
    if [ -z "$pid" ] || [ -z "$seq" ]; then
        die "bad tag '$1' (want $PREFIX-<pid>-<seq>)"
    fi
}

# kill_inside NS: SIGKILL every process still inside namespace NS (ranks
# of a test that died), so that the namespace really goes away.
kill_inside() {
    for p in $(ip netns pids "$1" 2>/dev/null); do
        kill -9 "$p" 2>/dev/null
    done
}

# down TAG: every namespace named TAG-*; links and bridge go with them.
down() {
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        case $ns in
        "$1"-sw | "$1"-h*)
            kill_inside "$ns"
            ip netns del "$ns" 2>/dev/null
            ;;
        esac
    done
    return 0
}

# run CMD...: runs it, and on failure says which command failed, undoes
# the bed when `up` is making it, and exits 1. need CMD... is the same for
# what only fails when the kernel lacks a feature (bridge, veth, tbf): it
# exits 77, so that tests skip.
undo=
run() {
    if ! out=$("$@" 2>&1); then
        echo "netbed: '$*' failed: $out" >&2
        [ -z "$undo" ] || down "$undo"
        exit 1
    fi
}
need() {
    if ! out=$("$@" 2>&1); then
        echo "netbed: '$*' failed, the kernel lacks a feature: $out" >&2
        [ -z "$undo" ] || down "$undo"
        exit 77
    fi
}

# tbf NS DEV MBIT: rate limit DEV's egress. The bucket holds 4 ms at the
# rate, at least 64 KiB (veth hands over 64 KiB GSO packets). Smaller
# buckets cost throughput on a loaded machine, where the qdisc's timer runs
# late (measured at 1 Gbit/s with ucx_perftest over TCP: 64 KiB gave 64-75
# MiB/s, 1 ms 105, 4 ms 108-114 of the 114 TCP can carry); the price is
# that after a pause up to 4 ms worth of data passes above the rate, so
# measure with messages of several MiB. The queue holds 20 ms.
tbf() {
    burst=$(($3 * 500))
    [ "$burst" -ge 65536 ] || burst=65536
    need tc -n "$1" qdisc add dev "$2" root tbf rate "$3"mbit \
        burst "$burst" latency 20ms
}

up() {
    tag=$1
    k=$2
    mbit=$3
    net=$SUBNET.$((seq % 256))
    sw=$tag-sw

    if [ -e "/run/netns/$sw" ]; then
        die "namespace $sw exists already"
    fi
    if ! out=$(ip netns add "$sw" 2>&1); then
        echo "netbed: cannot create network namespaces here: $out" >&2
        exit 77
    fi
    undo=$tag
    need ip -n "$sw" link add br0 type bridge
    run ip -n "$sw" link set br0 up
    h=0
    while [ "$h" -lt "$k" ]; do
        ns=$tag-h$h
        run ip netns add "$ns"
        need ip -n "$sw" link add "port$h" type veth peer name "veth$h" \
            netns "$ns"
        run ip -n "$sw" link set "port$h" master br0 up
        run ip -n "$ns" link set lo up
        run ip -n "$ns" addr add "$net.$((h + 1))/24" dev "veth$h"
        run ip -n "$ns" link set "veth$h" up
        if [ "$mbit" -gt 0 ]; then
            tbf "$ns" "veth$h" "$mbit"
            tbf "$sw" "port$h" "$mbit"
        fi
        h=$((h + 1))
    done
}

sweep() {
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        case $ns in
        "$PREFIX"-*-*-sw | "$PREFIX"-*-*-h*) ;;
        *) continue ;;
        esac
        rest=${ns#"$PREFIX"-}
        pid=${rest%%-*}
        case $pid in
        '' | *[!0-9]*) continue ;;
        esac
        if ! kill -0 "$pid" 2>/dev/null; then
            kill_inside "$ns"
            ip netns del "$ns" 2>/dev/null &&
                echo "netbed: removed stale namespace $ns" >&2
        fi
    done
    # scratch directories of netbed.c: /tmp/<tag>.XXXXXX, id files only
    for d in /tmp/"$PREFIX"-*-*.*; do
        [ -d "$d" ] || continue
        rest=${d#/tmp/"$PREFIX"-}
        pid=${rest%%-*}
        case $pid in
        '' | *[!0-9]*) continue ;;
        esac
        kill -0 "$pid" 2>/dev/null || rm -rf -- "$d"
    done
    return 0
}

# root's tools, also when the caller's PATH lacks the sbin directories
PATH=$PATH:/usr/sbin:/sbin
export PATH
[ "$(id -u)" = 0 ] || { echo "netbed: needs root" >&2; exit 77; }
command -v ip >/dev/null 2>&1 ||
    { echo "netbed: no ip (iproute2)" >&2; exit 77; }

cmd=${1:-}
case $cmd in
up)
    [ $# -ge 3 ] || die "usage: netbed.sh up TAG K [MBIT]"
    check_tag "$2"
    case $3 in '' | *[!0-9]*) die "bad host count '$3'" ;; esac
    if [ "$3" -lt 1 ] || [ "$3" -gt 16 ]; then
        die "host count $3 not in 1..16"
    fi
    mbit=${4:-0}
    case $mbit in '' | *[!0-9]*) die "bad rate '$mbit' (Mbit/s)" ;; esac
    if [ "$mbit" -gt 0 ]; then
        command -v tc >/dev/null 2>&1 ||
            { echo "netbed: no tc (iproute2)" >&2; exit 77; }
    fi
    up "$2" "$3" "$mbit"
    ;;
link)
    [ $# -eq 4 ] || die "usage: netbed.sh link TAG H up|down"
    check_tag "$2"
    case $3 in '' | *[!0-9]*) die "bad host '$3'" ;; esac
    case $4 in up | down) ;; *) die "bad state '$4'" ;; esac
    run ip -n "$2-sw" link set "port$3" "$4"
    ;;
down)
    [ $# -eq 2 ] || die "usage: netbed.sh down TAG"
    check_tag "$2"
    down "$2"
    ;;
sweep)
    sweep
    ;;
*)
    die "usage: netbed.sh up TAG K [MBIT] | link TAG H up|down |" \
        "down TAG | sweep"
    ;;
esac
