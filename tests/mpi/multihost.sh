#!/usr/bin/env bash
# Several "hosts" on one machine: Linux network namespaces, each with its own address on a
# private bridge this script creates, its own hostname and its own /dev/shm; mpirun launches
# into them through an agent script in place of ssh. Runs mpi_find_prologues across 3 hosts
# (file input, counts checked against a serial scan, every host named in the results) and
# test_mpi across them; then kills one rank mid-run: mpirun must end within seconds and no
# process of the job may be left in any namespace.
# Creates everything it needs, removes everything it made (also when interrupted), refuses to
# start when its names exist, bounds every run with --timeout, and sends traffic only to the
# addresses of the namespaces it made (no default route in them).
# Usage: multihost.sh <test_mpi> <mpi_find_prologues> <work dir>. Skips (exit 77) unless root
# with ip, unshare and mpirun. Facts it relies on: ../../TOOLCHAIN.md "MPI across network
# namespaces" (shared/TOOLCHAIN.md in the team's tree).
set -uo pipefail
test_mpi=$1 finder=$2 work=$3
skip() { echo "SKIPPED: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
for c in ip unshare mpirun; do command -v $c >/dev/null || skip "no $c"; done

id=$$
br=shkbr$((id % 100000))
net=10.251.$((id % 200 + 20))
hosts=(shkh1-$id shkh2-$id shkh3-$id)
ip link show "$br" >/dev/null 2>&1 && { echo "FAILED: $br exists"; exit 1; }
for h in "${hosts[@]}"; do
  ip netns list | grep -qw "$h" && { echo "FAILED: namespace $h exists"; exit 1; }
done
ip -o addr | grep -q " $net\." && { echo "FAILED: $net.0/24 is in use here"; exit 1; }

made_br=0
made_ns=()
cleanup() {
  for h in "${made_ns[@]}"; do
    for p in $(ip netns pids "$h" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    ip netns del "$h" 2>/dev/null
  done
  [ $made_br = 1 ] && ip link del "$br" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$work" && mkdir -p "$work"
ip link add "$br" type bridge && made_br=1 || { echo "FAILED: cannot make a bridge"; exit 1; }
ip addr add "$net.1/24" dev "$br" && ip link set "$br" up || exit 1
hostfile=$work/hosts
: >"$hostfile"
for i in 0 1 2; do
  h=${hosts[$i]} addr=$net.$((11 + i))
  ip netns add "$h" && made_ns+=("$h") || exit 1
  ip link add "shkv$i-$((id % 10000))" type veth peer name "shkp$i-$((id % 10000))" || exit 1
  ip link set "shkp$i-$((id % 10000))" netns "$h" || exit 1
  ip link set "shkv$i-$((id % 10000))" master "$br" up || exit 1
  ip -n "$h" addr add "$addr/24" dev "shkp$i-$((id % 10000))" || exit 1
  ip -n "$h" link set "shkp$i-$((id % 10000))" up && ip -n "$h" link set lo up || exit 1
  echo "$h $addr" >>"$work/names"
  echo "$addr slots=2" >>"$hostfile"
done

# The agent: Open MPI calls it as `AGENT ADDRESS orted ...` with the command quoted for a remote
# shell, which runs it through sh -c as sshd would: in the namespace of that address, with its
# own hostname and a private /dev/shm.
agent=$work/agent.sh
cat >"$agent" <<AGENT
#!/bin/sh
addr=\$1; shift
ns=\$(awk -v a="\$addr" '\$2 == a {print \$1}' "$work/names")
[ -n "\$ns" ] || { echo "agent: unknown host \$addr" >&2; exit 1; }
exec ip netns exec "\$ns" unshare --uts --mount sh -c 'hostname "\$0"; mount -t tmpfs tmpfs /dev/shm; exec sh -c "\$1"' "\$ns" "\$*"
AGENT
chmod +x "$agent"

mpirun_hosts() { # <ranks> <timeout s> <program...>
  local n=$1 t=$2
  shift 2
  mpirun --allow-run-as-root --oversubscribe --hostfile "$hostfile" -n "$n" --map-by node \
    --bind-to none --timeout "$t" --mca plm_rsh_agent "$agent" --mca btl tcp,self \
    --mca btl_tcp_if_include "$net.0/24" --mca oob_tcp_if_include "$net.0/24" \
    --mca orte_tmpdir_base "$work" "$@"
}

failed=0
# 1. the example across three hosts: counts match and every host ran chunks
input=/usr/lib/x86_64-linux-gnu/libc.so.6
[ -r "$input" ] || input=$(command -v bash)
if mpirun_hosts 3 60 "$finder" "$input" 24 >"$work/find.log" 2>&1 &&
   grep -q "one serial scan" "$work/find.log" && ! grep -q DIFFER "$work/find.log"; then
  cat "$work/find.log"
  for h in "${hosts[@]}"; do
    grep -q "on $h\$" "$work/find.log" || { echo "FAILED: no chunk ran on $h"; failed=1; }
  done
else
  echo "FAILED: mpi_find_prologues across hosts"; cat "$work/find.log"; failed=1
fi
# 2. the MPI tests across hosts (three ranks, one per host)
if mpirun_hosts 3 150 "$test_mpi" >"$work/test.log" 2>&1; then
  grep -c '^\[       OK \]' "$work/test.log" | sed 's/^/test_mpi across hosts: tests passed on all ranks: /'
else
  echo "FAILED: test_mpi across hosts"; grep -v '^\[ *\(RUN\|OK\) ' "$work/test.log" | tail -40; failed=1
fi
# 3. a rank killed mid-run: a long scan of a sparse file, one rank of the middle host killed
big=$work/big
truncate -s 24G "$big"
start=$(date +%s)
mpirun_hosts 3 120 "$finder" "$big" 48 >"$work/kill.log" 2>&1 &
job=$!
victim=""
for _ in $(seq 1 100); do
  for p in $(ip netns pids "${hosts[1]}" 2>/dev/null); do
    [ "$(cat /proc/$p/comm 2>/dev/null)" = mpi_find_prolog ] && victim=$p && break
  done
  [ -n "$victim" ] && break
  sleep 0.1
done
if [ -z "$victim" ]; then
  echo "FAILED: no rank found on ${hosts[1]}"; failed=1; wait $job
else
  sleep 1
  kill -9 "$victim"
  wait $job
  rc=$?
  took=$(($(date +%s) - start))
  [ $rc -ne 0 ] || { echo "FAILED: mpirun said 0 after a rank was killed"; failed=1; }
  [ $took -le 60 ] || { echo "FAILED: mpirun took ${took}s after the kill"; failed=1; }
  # nothing left: no live process of the job in any namespace (zombies are reaped slowly here)
  for _ in $(seq 1 50); do
    left=""
    for h in "${hosts[@]}"; do
      for p in $(ip netns pids "$h" 2>/dev/null); do
        state=$(awk '{print $3}' /proc/$p/stat 2>/dev/null)
        [ -n "$state" ] && [ "$state" != Z ] && left="$left $h:$p($(cat /proc/$p/comm 2>/dev/null))"
      done
    done
    [ -z "$left" ] && break
    sleep 0.2
  done
  [ -z "$left" ] || { echo "FAILED: left behind:$left"; failed=1; }
  echo "killed rank: mpirun ended with $rc after ${took}s in all; nothing left"
fi
[ $failed = 0 ] && echo "multihost: passed (3 namespaces on $br, $net.0/24)"
exit $failed
