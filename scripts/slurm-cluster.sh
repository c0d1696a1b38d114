#!/usr/bin/env bash
# A small real Slurm cluster in Docker containers, for containerctl's Slurm backend (CI and trying
# it out): one controller (slurmctld, also the submit/login host) and N compute nodes (slurmd),
# all from the offline image images/slurm-node.yaml (cpu-selftest + Debian's Slurm 22.05, munge,
# libpmix2), one munge key shared, a small slurm.conf, and one Docker volume mounted at
# /workspace on every node (the cluster's shared filesystem).
#
#   scripts/slurm-cluster.sh up     [--name NAME] [--nodes N] [--cpus C]   start (or reuse) it
#   scripts/slurm-cluster.sh status [--name NAME]                          sinfo + squeue
#   scripts/slurm-cluster.sh down   [--name NAME]                          remove it
#
# Everything it creates carries the label io.containerctl.slurm-cluster=NAME; `down` removes only
# what carries that label (never a container, volume or network it did not make).
# Unprivileged containers: ProctrackType=proctrack/pgid, TaskPlugin=task/none, no slurmdbd.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cmd=${1:-}; [ $# -gt 0 ] && shift
name=cctl-slurm; nodes=2; cpus=2
while [ $# -gt 0 ]; do
  case $1 in
    --name) name=$2; shift 2;;
    --nodes) nodes=$2; shift 2;;
    --cpus) cpus=$2; shift 2;;
    *) echo "slurm-cluster.sh: unknown option $1 (use --name, --nodes, --cpus)" >&2; exit 2;;
  esac
done
case $name in *[!a-z0-9-]*|"") echo "slurm-cluster.sh: --name $name: use lower-case letters, digits and -" >&2; exit 2;; esac
case $nodes in ''|*[!0-9]*|0) echo "slurm-cluster.sh: --nodes $nodes: a number >= 1" >&2; exit 2;; esac
case $cpus in ''|*[!0-9]*|0) echo "slurm-cluster.sh: --cpus $cpus: a number >= 1" >&2; exit 2;; esac
label=io.containerctl.slurm-cluster=$name
ctl=$name-ctl
CONTAINERCTL=${CONTAINERCTL:-$top/.venv/bin/containerctl}

ours() {  # ours KIND NAME: does the object exist and carry our label?
  local v
  v=$(docker "$1" inspect -f '{{ index .Config.Labels "io.containerctl.slurm-cluster" }}' "$2" 2>/dev/null) || \
    v=$(docker "$1" inspect -f '{{ index .Labels "io.containerctl.slurm-cluster" }}' "$2" 2>/dev/null) || return 1
  [ "$v" = "$name" ]
}

slurm_conf() {
  cat <<EOF
# written by containerctl scripts/slurm-cluster.sh for cluster $name
ClusterName=$name
SlurmctldHost=$ctl
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=pmi2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
SlurmdTimeout=10
SlurmctldTimeout=30
MessageTimeout=5
KillWait=5
MinJobAge=600
InactiveLimit=0
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$name-n[1-$nodes] CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=60 State=UP OverSubscribe=NO
EOF
}

wait_ready() {
  local i out
  for i in $(seq 1 120); do
    out=$(docker exec "$ctl" sinfo -h -N -o '%N %t' 2>/dev/null || true)
    if [ -n "$out" ] && [ "$(grep -cE ' (idle|mix|alloc)$' <<<"$out")" -ge "$nodes" ]; then
      echo "$out"; return 0
    fi
    # a node that came back (container restarted) may be marked down by an earlier run
    docker exec "$ctl" scontrol update nodename="$name-n[1-$nodes]" state=resume >/dev/null 2>&1 || true
    sleep 0.5
  done
  echo "slurm-cluster.sh: the nodes did not become idle in 60s:" >&2
  echo "$out" >&2
  docker exec "$ctl" tail -20 /var/log/slurm/slurmctld.log >&2 || true
  return 1
}

up() {
  local image
  image=$("$CONTAINERCTL" image build slurm-node 2>/dev/null | tail -1)
  case $image in containerctl/slurm-node:*) ;; *)
    echo "slurm-cluster.sh: could not build the slurm-node image; run: $CONTAINERCTL image build slurm-node" >&2; exit 1;; esac
  local objs=("network:$name-net" "volume:$name-conf" "volume:$name-work" "container:$ctl")
  for i in $(seq 1 "$nodes"); do objs+=("container:$name-n$i"); done
  # refuse before making anything: every name must be free or already this cluster's
  for obj in "${objs[@]}"; do
    kind=${obj%%:*}; n=${obj#*:}
    if docker "$kind" inspect "$n" >/dev/null 2>&1 && ! ours "$kind" "$n"; then
      echo "slurm-cluster.sh: $kind $n exists and is not this cluster's; choose another --name" >&2; exit 2
    fi
  done
  for obj in "network:$name-net" "volume:$name-conf" "volume:$name-work"; do
    kind=${obj%%:*}; n=${obj#*:}
    docker "$kind" inspect "$n" >/dev/null 2>&1 || docker "$kind" create --label "$label" "$n" >/dev/null
  done
  # slurm.conf and the one munge key every node shares, in the conf volume
  docker run -i --rm --label "$label" -v "$name-conf:/c" --entrypoint bash "$image" -c \
    '[ -s /c/munge.key ] || dd if=/dev/urandom of=/c/munge.key bs=1024 count=1 status=none; cat > /c/slurm.conf.new && mv /c/slurm.conf.new /c/slurm.conf' \
    < <(slurm_conf)
  local c role
  for c in "$ctl" $(seq -f "$name-n%g" 1 "$nodes"); do
    role=compute; [ "$c" = "$ctl" ] && role=controller
    if docker container inspect "$c" >/dev/null 2>&1; then
      if [ "$(docker container inspect -f '{{.Config.Image}}' "$c")" = "$image" ]; then
        docker start "$c" >/dev/null; continue
      fi
      docker rm -f "$c" >/dev/null
    fi
    docker run -d --init --name "$c" --hostname "$c" --network "$name-net" --label "$label" \
      --label "io.containerctl.slurm-role=$role" --shm-size 1g \
      -v "$name-conf:/etc/slurm-shared" -v "$name-work:/workspace" \
      -e OMPI_ALLOW_RUN_AS_ROOT=1 -e OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
      -e OMPI_MCA_btl_vader_single_copy_mechanism=none \
      --entrypoint containerctl-slurm-node "$image" "$role" >/dev/null
  done
  wait_ready
  echo "slurm cluster $name up: submit host docker://$ctl, nodes $name-n[1-$nodes] ($cpus CPUs each), shared /workspace"
}

down() {
  local ids
  ids=$(docker ps -aq --filter "label=$label")
  [ -n "$ids" ] && docker rm -f $ids >/dev/null
  docker network ls -q --filter "label=$label" | xargs -r docker network rm >/dev/null
  docker volume ls -q --filter "label=$label" | xargs -r docker volume rm >/dev/null
  echo "slurm cluster $name removed"
}

case $cmd in
  up) up;;
  down) down;;
  status) docker exec "$ctl" sinfo; docker exec "$ctl" squeue;;
  *) echo "usage: slurm-cluster.sh up|status|down [--name NAME] [--nodes N] [--cpus C]" >&2; exit 2;;
esac
