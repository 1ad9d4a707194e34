#!/usr/bin/env bash
# A throw-away single-node SLURM on this machine, to prove profiles/slurm for real.
#
#   tools/slurm.sh start DIR [--no-gpu] [--partition NAME]
#       installs Debian's slurm-wlm + munge when missing (root + apt), writes
#       /etc/slurm/slurm.conf and gres.conf (copies in DIR) (one fake GPU, File=/dev/null) from
#       `hostname -s` and `slurmd -C`, starts munged (unless one already answers),
#       slurmctld and slurmd by hand (no systemd) and waits until the node is idle.
#       Every daemon it started is listed in DIR/started.pids.
#       The configuration goes to /etc/slurm/ (the only place srun inside a job
#       looks: the slurm plugin's job step drops SLURM_CONF); an existing
#       /etc/slurm/slurm.conf not written by this script is never overwritten.
#   tools/slurm.sh stop DIR
#       cancels the cluster's jobs and stops every daemon in DIR/started.pids, by PID
#       (TERM, then KILL after 10 s). Safe to call twice, or after a failed start.
#
# Outside DIR it writes only /etc/slurm/{slurm,gres}.conf (removed again by stop), what
# apt installs, and munged's /run/munge.
# Accounting is off (no slurmdbd): use `slurm-status-command: squeue` (profiles/slurm).
# Memory limits are enforced by jobacct_gather/linux + OverMemoryKill (no cgroups needed),
# so a job over its mem_mb is killed (state FAILED; its log says "Exceeded job memory limit").
set -euo pipefail

usage() { sed -n '2,17p' "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd="$1"
DIR="$(mkdir -p "$2" && cd "$2" && pwd)"
shift 2
GPU=1
PARTITION=debug
while [ $# -gt 0 ]; do
    case "$1" in
    --no-gpu) GPU=0 ;;
    --partition) PARTITION="$2"; shift ;;
    *) usage ;;
    esac
    shift
done
PIDS="$DIR/started.pids"
ETC=/etc/slurm
export SLURM_CONF="$ETC/slurm.conf"
MARK="# written by tools/slurm.sh for a throw-away single-node test cluster"

log() { echo "[slurm] $*" >&2; }

stop() {
    if command -v squeue >/dev/null 2>&1 && [ -f "$SLURM_CONF" ]; then
        ids="$(timeout 5 squeue -h -o %i 2>/dev/null || true)"
        [ -z "$ids" ] || timeout 5 scancel $ids 2>/dev/null || true
    fi
    [ -f "$PIDS" ] || return 0
    # reverse order: slurmd, slurmctld, then munged
    mapfile -t pids < <(tac "$PIDS")
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for _ in $(seq 100); do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            log "PID $pid did not stop on TERM; sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -f "$PIDS"
    log "stopped ${#pids[@]} daemon(s)"
    if head -1 "$ETC/slurm.conf" 2>/dev/null | grep -qF "$MARK"; then
        rm -f "$ETC/slurm.conf" "$ETC/gres.conf"
    fi
}

wait_pidfile() {  # wait_pidfile FILE: print the PID once the daemon has written it
    for _ in $(seq 100); do
        if [ -s "$1" ]; then cat "$1"; return 0; fi
        sleep 0.1
    done
    return 1
}

install_if_missing() {
    local need=()
    command -v slurmctld >/dev/null 2>&1 || need+=(slurmctld)
    command -v slurmd >/dev/null 2>&1 || need+=(slurmd)
    command -v sbatch >/dev/null 2>&1 || need+=(slurm-client)
    command -v munged >/dev/null 2>&1 || need+=(munge)
    [ ${#need[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        log "missing ${need[*]} and cannot install them (needs root and apt-get)"
        exit 3
    fi
    log "installing Debian packages: ${need[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; } >"$DIR/apt.log" 2>&1 \
        || { log "apt-get install failed; see $DIR/apt.log"; exit 3; }
}

write_conf() {
    local host node_line
    host="$(hostname -s)"
    # slurmd -C: CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105
    node_line="$(slurmd -C | head -1)"
    local cpus boards sockets cores threads mem
    cpus="$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$node_line")"
    boards="$(sed -n 's/.* Boards=\([0-9]*\).*/\1/p' <<<"$node_line")"
    sockets="$(sed -n 's/.* SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$node_line")"
    cores="$(sed -n 's/.* CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$node_line")"
    threads="$(sed -n 's/.* ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$node_line")"
    mem="$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$node_line")"
    mem=$((mem * 9 / 10))   # configured above the real memory drains the node
    if [ -e "$ETC/slurm.conf" ] && ! head -1 "$ETC/slurm.conf" | grep -qF "$MARK"; then
        log "$ETC/slurm.conf exists and was not written by this script: refusing to replace it"
        return 1
    fi
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" "$ETC"
    local gres_node="" gres_types=""
    if [ "$GPU" = 1 ]; then
        gres_types="GresTypes=gpu"
        gres_node="Gres=gpu:1"
        # a fake GPU: File= is required, else the node goes INVAL (count reported 0 < 1)
        printf 'AutoDetect=off\nNodeName=%s Name=gpu File=/dev/null\n' "$host" >"$ETC/gres.conf"
    else
        : >"$ETC/gres.conf"
    fi
    cat >"$SLURM_CONF" <<EOF
$MARK
ClusterName=cryossetest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldPort=${CRYOSSE_SLURMCTLD_PORT:-6817}
SlurmdPort=${CRYOSSE_SLURMD_PORT:-6818}
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
JobCompType=jobcomp/none
# reject at sbatch (a clear error) what no node of the partition could ever run
EnforcePartLimits=ALL
# squeue shows finished jobs for MinJobAge s; the slurm plugin's squeue status needs >= 3 x init-seconds
MinJobAge=600
InactiveLimit=0
KillWait=5
Waittime=0
$gres_types
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus Boards=$boards SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem $gres_node State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    cp "$SLURM_CONF" "$ETC/gres.conf" "$DIR/"
    log "wrote $SLURM_CONF (node $host: $cpus CPUs, $mem MB, gpu=$GPU, partition $PARTITION)"
}

start_munge() {
    if command -v munge >/dev/null 2>&1 && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        log "munged already running; reusing it (not stopped by this script)"
        return 0
    fi
    [ -s /etc/munge/munge.key ] || {
        if command -v mungekey >/dev/null 2>&1; then mungekey --create; else create-munge-key -f; fi
        chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
    }
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 755 /run/munge
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged
    local pid
    pid="$(wait_pidfile /run/munge/munged.pid)" || { log "munged did not start"; return 1; }
    echo "$pid" >>"$PIDS"
    log "munged PID $pid"
}

start() {
    install_if_missing
    if [ -f "$PIDS" ]; then
        log "$PIDS exists: a cluster from $DIR may still run; stopping it first"
        stop
    fi
    : >"$PIDS"
    write_conf
    start_munge
    rm -f "$DIR/slurmctld.pid" "$DIR/slurmd.pid"
    local pid
    /usr/sbin/slurmctld -f "$SLURM_CONF"
    pid="$(wait_pidfile "$DIR/slurmctld.pid")" || { log "slurmctld did not start; see $DIR/log/slurmctld.log"; return 1; }
    echo "$pid" >>"$PIDS"
    /usr/sbin/slurmd -f "$SLURM_CONF"
    pid="$(wait_pidfile "$DIR/slurmd.pid")" || { log "slurmd did not start; see $DIR/log/slurmd.log"; return 1; }
    echo "$pid" >>"$PIDS"
    local host state
    host="$(hostname -s)"
    for i in $(seq 300); do
        state="$(sinfo -h -n "$host" -o %T 2>/dev/null | head -1 || true)"
        case "$state" in
        idle) log "node $host idle after $((i / 10)).$((i % 10)) s"; return 0 ;;
        *drain* | *inval* | down*)
            scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
        esac
        sleep 0.1
    done
    log "node $host not idle after 30 s (state '${state:-?}'); see $DIR/log/"
    return 1
}

case "$cmd" in
start)
    trap 'rc=$?; if [ $rc -ne 0 ]; then log "start failed (rc $rc); stopping what was started"; stop; fi' EXIT
    start
    ;;
stop) stop ;;
*) usage ;;
esac
