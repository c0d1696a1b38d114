#!/usr/bin/env bash
# Prepare a fresh Debian host (root) for containerctl: the Docker engine (started when none
# answers), mmdebstrap for offline base images, OpenMPI and Chromium for the host-side tests,
# and a virtualenv at .venv with containerctl installed in editable mode.
# Idempotent: every step checks first. Source it or run it; prints what it does.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
say() { printf '==> %s\n' "$*"; }

need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v mmdebstrap >/dev/null 2>&1 || need_pkgs+=(mmdebstrap)
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
if [ "${CONTAINERCTL_SETUP_TEST_DEPS:-0}" = 1 ]; then
  command -v mpicc >/dev/null 2>&1 || need_pkgs+=(openmpi-bin libopenmpi-dev)
  command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
  command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need_pkgs+=(openssh-server openssh-client)
  command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)
  [ -f /usr/include/gtest/gtest.h ] && [ -f /usr/include/nlohmann/json.hpp ] || need_pkgs+=(libgtest-dev nlohmann-json3-dev)
  command -v tmux >/dev/null 2>&1 || need_pkgs+=(tmux)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  say "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  say "starting dockerd (log: /var/log/containerctl-dockerd.log)"
  mkdir -p /var/log
  nohup dockerd >/var/log/containerctl-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { tail -20 /var/log/containerctl-dockerd.log; echo "dockerd did not start" >&2; exit 1; }
fi
say "docker engine $(docker version --format '{{.Server.Version}}')"

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
# the plot extra always (the README's `report --plot` works after the quick start); the test
# extra (which includes it) for the test command
extra="[plot]"
[ "${CONTAINERCTL_SETUP_TEST_DEPS:-0}" = 1 ] && extra="[test]"
if ! .venv/bin/python -c "import containerctl, typer, docker, pydantic, matplotlib" >/dev/null 2>&1 || \
    [ "$extra" = "[test]" ]; then
  say "installing containerctl into .venv ${extra}"
  .venv/bin/pip install -q -e ".${extra}" 2>&1 | grep -v '^WARNING: Location' || true
fi
.venv/bin/containerctl --version
