# slurm-node: rendered by containerctl from images/slurm-node.yaml and Dockerfile.templates/.
# Edit those, not this file. Tagged containerctl/slurm-node:<hash of this text, the files it
# copies and the base image id>.
#
# cpu-selftest (the same blocks, so Docker reuses its layers) plus Debian 12's Slurm 22.05
# (slurmctld, slurmd, slurm-client), munge and libpmix2: one image for the controller and the
# compute nodes of the CI Slurm cluster (scripts/slurm-cluster.sh). Offline like cpu-selftest.
FROM containerctl/base:debian-bookworm

ENV DEBIAN_FRONTEND=noninteractive

# ---- block 1/5: base-packages (Dockerfile.templates/base-packages.j2) ----
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        build-essential \
        g++ \
        git \
        iproute2 \
        less \
        libgtest-dev \
        make \
        nlohmann-json3-dev \
        procps; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*

# ---- block 2/5: python (Dockerfile.templates/python.j2) ----
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        python3; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*; \
    command -v python >/dev/null || ln -s "$(command -v python3)" /usr/local/bin/python; \
    python3 --version

# ---- block 3/5: openmpi (Dockerfile.templates/openmpi.j2) ----
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        libopenmpi-dev \
        openmpi-bin; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*; \
    ompi="$(ls -d /usr/lib/*/openmpi | head -n 1)"; \
    mkdir -p /usr/local/mpi/bin; \
    ln -s "$ompi/include" /usr/local/mpi/include; \
    ln -s "$ompi/lib" /usr/local/mpi/lib; \
    for tool in mpicc mpicxx mpic++ mpiexec; do ln -s /usr/bin/$tool.openmpi /usr/local/mpi/bin/$tool; done; \
    for tool in ompi_info orted orterun; do ln -s /usr/bin/$tool /usr/local/mpi/bin/$tool; done; \
    printf '%s\n' '#!/bin/sh' 'exec /usr/bin/mpirun.openmpi --allow-run-as-root "$@"' > /usr/local/mpi/bin/mpirun; \
    chmod 0755 /usr/local/mpi/bin/mpirun; \
    /usr/local/mpi/bin/mpirun --version
ENV PATH=/usr/local/mpi/bin:$PATH

# ---- block 4/5: sshd (Dockerfile.templates/sshd.j2) ----
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        openssh-client \
        openssh-server; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*; \
    mkdir -p /etc/ssh/sshd_config.d /run/sshd /root/.ssh; \
    chmod 0700 /root/.ssh; \
    printf '%s\n' \
        'Port 8010' \
        'PermitRootLogin prohibit-password' \
        'PubkeyAuthentication yes' \
        'PasswordAuthentication no' \
        'AuthorizedKeysFile .ssh/authorized_keys' \
        > /etc/ssh/sshd_config.d/containerctl.conf; \
    grep -q '^Include /etc/ssh/sshd_config.d/' /etc/ssh/sshd_config \
        || sed -i '1i Include /etc/ssh/sshd_config.d/*.conf' /etc/ssh/sshd_config; \
    rm -f /etc/ssh/ssh_host_*; \
    printf '%s\n' '#!/bin/sh' 'set -e' 'ssh-keygen -A >/dev/null' 'mkdir -p /run/sshd' \
        'exec /usr/sbin/sshd "$@"' > /usr/local/bin/containerctl-sshd; \
    chmod 0755 /usr/local/bin/containerctl-sshd
ENV HYDRA_LAUNCHER_EXTRA_ARGS="-p 8010" \
    OMPI_MCA_plm_rsh_args="-p 8010"
EXPOSE 8010

# ---- block 5/5: slurm (Dockerfile.templates/slurm.j2) ----
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        libpmix2 \
        munge \
        slurm-client \
        slurmctld \
        slurmd; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*; \
    mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge; \
    printf '%s\n' '#!/bin/bash' \
        '# containerctl-slurm-node controller|compute: munged, then slurmctld or slurmd' \
        'set -e' \
        'role=${1:?usage: containerctl-slurm-node controller|compute}' \
        'conf=/etc/slurm-shared' \
        'for i in $(seq 1 100); do [ -f $conf/slurm.conf ] && [ -f $conf/munge.key ] && break; sleep 0.2; done' \
        '# munged runs as root: in an unprivileged container a daemon of another user has a' \
        '# /proc/PID/environ root cannot read, and the stage sweep reads every process'"'"'s' \
        'install -o root -g root -m 0400 $conf/munge.key /etc/munge/munge.key' \
        'mkdir -p /etc/slurm /run/munge' \
        'chown -R root:root /etc/munge /var/lib/munge /var/log/munge /run/munge' \
        'ln -sf $conf/slurm.conf /etc/slurm/slurm.conf' \
        '/usr/sbin/munged --force' \
        'if [ "$role" = controller ]; then exec /usr/sbin/slurmctld -D -i; fi' \
        'exec /usr/sbin/slurmd -D -N "$(hostname)"' \
        > /usr/local/bin/containerctl-slurm-node; \
    chmod 0755 /usr/local/bin/containerctl-slurm-node

WORKDIR /root
