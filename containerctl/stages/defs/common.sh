# shared prologue of every stage script (rendered by containerctl)
set -eo pipefail
export CCTL_DIR="{{ cctl_dir }}"
mkdir -p "$CCTL_DIR"
source_env() {
  for f in "$CCTL_DIR"/mpi.env "$CCTL_DIR"/ccl.env; do [ -f "$f" ] && . "$f"; done
  return 0
}
{% for k, v in stage_env.items() %}export {{ k }}={{ v | shq }}
{% endfor %}
