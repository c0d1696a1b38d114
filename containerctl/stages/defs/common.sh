# shared prologue of every stage script (values arrive as exported CCTL_* variables above)
set -eo pipefail
mkdir -p "$CCTL_DIR"
source_env() {
  for f in "$CCTL_DIR"/mpi.env "$CCTL_DIR"/ccl.env; do [ -f "$f" ] && . "$f"; done
  return 0
}
# a list value: one element per line → a bash array (`lines_to ARR "$CCTL_X"`)
lines_to() { local -n _arr=$1; _arr=(); [ -n "$2" ] && mapfile -t _arr <<< "$2"; return 0; }
# the lines containerctl reads (containerctl/stages/markers.py names each kind; a stage script
# never spells one itself): `cctl_mark KIND ARG…` prints one marker line, `cctl_tag KIND [RANK]`
# the tag put before every line of a dumped file (rank: a rank's output, xml: a gtest XML)
cctl_mark() {
  local k=$1; shift
  case $k in
    begin) printf '=== containerctl %s ===\n' "$*" ;;
    end|unittest|ut-build|ut-skip|ut-run|ut-end|ut-xml|ut-xml-end|ut-missing)
      printf '=== containerctl %s ===\n' "$k${*:+ $*}" ;;
    dep) printf 'DEP %s\n' "$*" ;;
    commit) printf 'FLAGCX_COMMIT=%s\n' "$*" ;;
    nccl) printf 'NCCL_VERSION=%s\n' "$*" ;;
    torch) printf 'TORCH_VERSION=%s\n' "$*" ;;
    mpich|bin|stdbuf|rankout|hostenv) printf 'CCTL_%s %s\n' "${k^^}" "$*" ;;
    *) echo "cctl_mark: unknown marker kind '$k'" >&2; return 2 ;;
  esac
}
cctl_tag() {
  case $1 in
    rank) printf 'CCTL_RANK%s| ' "$2" ;;
    xml) printf 'CCTL_XML| ' ;;
    *) echo "cctl_tag: unknown tag kind '$1'" >&2; return 2 ;;
  esac
}
# make's path variables from the profile and from deps
path_vars() {
  pvars=()
  [ -n "$CCTL_DEVICE_HOME" ] && pvars+=("DEVICE_HOME=$CCTL_DEVICE_HOME")
  [ -n "${CCL_HOME:-}" ] && pvars+=("CCL_HOME=$CCL_HOME")
  [ -n "${MPI_HOME:-}" ] && pvars+=("MPI_HOME=$MPI_HOME")
  return 0
}
# the MPI launch line as the array `launcher`: built in Python (containerctl/launch.py: mpirun
# and its flags from the flavour and the facts deps probed, or the Slurm ranks' step) and given
# as CCTL_LAUNCH_ARGV; added here, at CCTL_LAUNCH_AT, only what the launch-time environment holds:
# -x NAME / -genv NAME VALUE for each of CCTL_LAUNCH_NAMES that is set, or (-u) `-u VAR` for
# each SLURM_* variable of this step not among them
mpi_launcher() {
  local a e=() v
  if [ -z "${CCTL_LAUNCH_ARGV:-}" ]; then
    echo "error: no MPI launch line: the deps stage writes the MPI facts ($CCTL_DIR/mpi.facts); run deps first" >&2
    return 3
  fi
  lines_to a "$CCTL_LAUNCH_ARGV"
  case ${CCTL_LAUNCH_ENV:-} in
    -x) for v in $CCTL_LAUNCH_NAMES; do [ -n "${!v+x}" ] && e+=(-x "$v"); done;;
    -genv) for v in $CCTL_LAUNCH_NAMES; do [ -n "${!v+x}" ] && e+=(-genv "$v" "${!v}"); done;;
    -u) for v in ${!SLURM_@}; do case " $CCTL_LAUNCH_NAMES " in *" $v "*) ;; *) e+=(-u "$v");; esac; done;;
  esac
  launcher=("${a[@]:0:CCTL_LAUNCH_AT}" "${e[@]}" "${a[@]:CCTL_LAUNCH_AT}")
}
# rank_output DIR: the wrapper `$CCTL_DIR/rankout.sh DIR CMD…` gives every MPI rank a file of its
# own (rank 0 also streams), so ranks' lines can never interleave in what is judged;
# dump_ranks DIR prints those files back, each line tagged `cctl_tag rank <r>` (it needs cctl_tag
# where it is shipped: `declare -f dump_ranks cctl_tag`).
rank_output() {
  cat > "$CCTL_DIR/rankout.sh" <<'RANKOUT'
#!/usr/bin/env bash
d=$1; shift
mkdir -p "$d"
r=${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-${PMIX_RANK:-${SLURM_PROCID:-0}}}}
if [ "$r" = 0 ]; then "$@" 2>&1 | tee "$d/rank.$r.out"; exit "${PIPESTATUS[0]}"; fi
exec "$@" > "$d/rank.$r.out" 2>&1
RANKOUT
  chmod +x "$CCTL_DIR/rankout.sh"
  rm -rf "$1"; mkdir -p "$1"
}
dump_ranks() {
  local f r
  for f in $(ls "$1"/rank.*.out 2>/dev/null | sort -t. -k2 -n); do
    r=${f##*/rank.}; r=${r%.out}
    sed "s/^/$(cctl_tag rank "$r")/" "$f"
  done
  return 0
}
