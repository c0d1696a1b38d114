# hetero-mpich: rendered by containerctl from images/hetero-mpich.yaml and Dockerfile.templates/.
# Edit those, not this file. Tagged containerctl/hetero-mpich:<hash of this text, the files it
# copies and the base image id>.
#
# cpu-selftest plus MPICH 4.2.3 built from source into /usr/local/mpich (first on PATH) for
# heterogeneous runs: every host needs the same MPICH. `--set mpich.source=distro` trades the
# pinned version for speed (Debian 12 ships 4.0.2).
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
        make \
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

# ---- block 4/5: mpich (Dockerfile.templates/mpich.j2) ----
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        ca-certificates \
        file \
        g++ \
        make \
        perl \
        python3 \
        wget; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*; \
    mkdir -p /tmp/mpich; \
    cd /tmp/mpich; \
    wget -q -O mpich.tar.gz https://www.mpich.org/static/downloads/4.2.3/mpich-4.2.3.tar.gz; \
    echo "7a019180c51d1738ad9c5d8d452314de65e828ee240bcb2d1f80de9a65be88a8  mpich.tar.gz" | sha256sum -c -; \
    tar -xzf mpich.tar.gz --strip-components=1; \
    ./configure --prefix=/usr/local/mpich --disable-fortran; \
    make -j"$(nproc)"; \
    make install; \
    cd /; \
    rm -rf /tmp/mpich; \
    /usr/local/mpich/bin/mpichversion
ENV PATH=/usr/local/mpich/bin:$PATH \
    LD_LIBRARY_PATH=/usr/local/mpich/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# ---- block 5/5: sshd (Dockerfile.templates/sshd.j2) ----
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

WORKDIR /root
