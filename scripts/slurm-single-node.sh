#!/usr/bin/env bash
# A single-node Slurm cluster on this machine (Debian's slurmctld, slurmd, slurm-client and munge; no systemd,
# no cgroups), to try `config-bisect submit --engine slurm` on one machine.
#
#   scripts/slurm-single-node.sh start    install the packages (as root, where missing), write slurm.conf, start
#                                         munged, slurmctld and slurmd; waits until the node takes jobs
#   scripts/slurm-single-node.sh stop     stop the daemons this script started, remove its slurm.conf and state
#   scripts/slurm-single-node.sh status   what runs; exit 0 when the cluster answers, 3 when it does not
#
# Idempotent: `start` on a running cluster does nothing, and a cluster this script did not start (or a slurm.conf
# it did not write) is used or refused, never changed. `stop` leaves the installed packages and any daemon it did
# not start alone. State, logs and the job completion file (`sacct -c` reads it) are kept in $SLURM_SINGLE_NODE_DIR
# (default /var/tmp/config-bisect-slurm). Jobs run as the submitting user: their output folders must be writable
# by that user.
set -euo pipefail

STATE_DIR=${SLURM_SINGLE_NODE_DIR:-/var/tmp/config-bisect-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by config-bisect scripts/slurm-single-node.sh"
PACKAGES=(slurmctld slurmd slurm-client munge)
STARTED="$STATE_DIR/started"  # one daemon per line, in start order: what `stop` may stop
PARTITION=main
NODE=localhost

say() { echo "slurm-single-node: $*"; }
die() { echo "slurm-single-node: error: $*" >&2; exit 1; }

conf_is_ours() { [[ -f $CONF ]] && head -n 1 "$CONF" | grep -qxF "$MARK"; }
node_state() { timeout 10 sinfo -h -n "$NODE" -o '%T' 2>/dev/null | head -n 1; }
cluster_answers() { timeout 10 sinfo -h >/dev/null 2>&1; }
pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
remember() { grep -qx "$1" "$STARTED" || echo "$1" >> "$STARTED"; }
munge_works() { command -v munge >/dev/null && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

install_packages() {
  local missing=() pkg
  for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null \
    || die "missing packages: ${missing[*]} (install them with your package manager, or run this as root on Debian)"
  say "installing ${missing[*]}"
  local policy_added=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then  # keep the packages' init scripts from starting daemons
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    policy_added=1
  fi
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}") rc=0
  "${apt[@]}" >/dev/null || { apt-get update -qq && "${apt[@]}" >/dev/null; } || rc=$?
  [[ -n $policy_added ]] && rm -f /usr/sbin/policy-rc.d
  [[ $rc -eq 0 ]] || die "apt-get could not install ${missing[*]}"
}

write_conf() {
  if [[ -f $CONF ]] && ! conf_is_ours; then
    die "$CONF exists and was not written by this script: start that Slurm its own way"
  fi
  local node
  node=$(slurmd -C | head -n 1 | sed -E "s/^NodeName=[^ ]+/NodeName=$NODE NodeAddr=127.0.0.1/; s/ UpTime=.*//")
  mkdir -p /etc/slurm "$STATE_DIR"/{state,spool,log}
  cat > "$CONF.tmp" <<EOF
$MARK
ClusterName=configbisect
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE_DIR/jobcomp.txt
MailProg=/bin/true
StateSaveLocation=$STATE_DIR/state
SlurmdSpoolDir=$STATE_DIR/spool
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd.pid
SlurmctldLogFile=$STATE_DIR/log/slurmctld.log
SlurmdLogFile=$STATE_DIR/log/slurmd.log
# a node set DOWN by hand stays down until resumed; one that stopped answering comes back when it answers
ReturnToService=1
KillWait=5
DefMemPerCPU=1024
$node State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$CONF.tmp" "$CONF"
}

start_munged() {
  munge_works && return 0  # a running munged (ours from before, or the machine's) will do
  [[ -f /etc/munge/munge.key ]] || runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
  mkdir -p /run/munge && chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged
  remember munged
  for _ in $(seq 50); do munge_works && return 0; sleep 0.1; done
  die "munged did not come up"
}

start_daemon() {  # name, pid file, command...
  local name=$1 pidfile=$2
  shift 2
  pid_alive "$pidfile" && return 0
  "$@"
  remember "$name"
}

wait_for_node() {
  local state=""
  for _ in $(seq 120); do
    state=$(node_state || true)
    case $state in
      idle*|mixed*|allocated*) say "node $NODE is $state (partition $PARTITION)"; return 0 ;;
      down*|drain*) scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.5
  done
  die "the node did not come up (state: ${state:-none}); see $STATE_DIR/log/"
}

start() {
  if [[ ! -f $STARTED ]] && cluster_answers; then
    say "a Slurm cluster is already running (not started by this script): using it, nothing started"
    sinfo
    return 0
  fi
  install_packages
  mkdir -p "$STATE_DIR"
  touch "$STARTED"
  write_conf
  start_munged
  start_daemon slurmctld "$STATE_DIR/slurmctld.pid" slurmctld
  for _ in $(seq 100); do cluster_answers && break; sleep 0.1; done
  start_daemon slurmd "$STATE_DIR/slurmd.pid" slurmd -N "$NODE"
  wait_for_node
}

stop_daemon() {  # name
  local pid="" name=$1
  case $name in
    munged) pid=$(cat /run/munge/munged.pid 2>/dev/null || true) ;;
    *) pid=$(cat "$STATE_DIR/$name.pid" 2>/dev/null || true) ;;
  esac
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    say "stopped $name (pid $pid)"
  fi
}

stop() {
  if [[ ! -f $STARTED ]]; then
    say "nothing to stop: this script started no cluster ($STARTED is missing)"
    return 0
  fi
  local name
  for name in $(tac "$STARTED"); do stop_daemon "$name"; done
  conf_is_ours && rm -f "$CONF"
  rm -rf "$STATE_DIR"
  say "stopped; packages stay installed"
}

status() {
  if [[ -f $STARTED ]]; then
    say "started by this script: $(paste -sd ' ' "$STARTED") (state in $STATE_DIR)"
  fi
  if cluster_answers; then
    sinfo
    return 0
  fi
  say "no Slurm cluster answers"
  return 3
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
