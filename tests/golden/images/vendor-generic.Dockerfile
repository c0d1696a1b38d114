# vendor-generic: rendered by containerctl from images/vendor-generic.yaml and Dockerfile.templates/.
# Edit those, not this file. Tagged containerctl/vendor-generic:<hash of this text, the files it
# copies and the base image id>.
#
# Any accelerator whose SDK ships in its vendor's base image (Kunlunxin, MetaX, Cambricon,
# Ascend, Iluvatar, Moore Threads, Hygon, AMD): the profile sets `base_image` (and `base_pkg`
# for dnf/yum bases). Adds OpenMPI 4.1.6 from source, GoogleTest, sshd on 8010 and FlagCX's
# source; no NCCL.
FROM ubuntu:22.04

ENV DEBIAN_FRONTEND=noninteractive

# ---- block 1/7: base-packages (Dockerfile.templates/base-packages.j2) ----
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        build-essential \
        ca-certificates \
        curl \
        git \
        iproute2 \
        less \
        pciutils \
        procps \
        wget; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*

# ---- block 2/7: python (Dockerfile.templates/python.j2) ----
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        python3 \
        python3-dev \
        python3-pip \
        python3-venv; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*; \
    command -v python >/dev/null || ln -s "$(command -v python3)" /usr/local/bin/python; \
    python3 --version

# ---- block 3/7: openmpi (Dockerfile.templates/openmpi.j2) ----
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        bzip2 \
        ca-certificates \
        file \
        g++ \
        libnuma-dev \
        make \
        perl \
        wget; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*; \
    mkdir -p /tmp/openmpi; \
    cd /tmp/openmpi; \
    wget -q -O openmpi.tar.bz2 https://download.open-mpi.org/release/open-mpi/v4.1/openmpi-4.1.6.tar.bz2; \
    echo "f740994485516deb63b5311af122c265179f5328a0d857a567b85db00b11e415  openmpi.tar.bz2" | sha256sum -c -; \
    tar -xjf openmpi.tar.bz2 --strip-components=1; \
    ./configure --prefix=/usr/local/mpi --enable-orterun-prefix-by-default; \
    make -j"$(nproc)"; \
    make install; \
    cd /; \
    rm -rf /tmp/openmpi; \
    mv /usr/local/mpi/bin/mpirun /usr/local/mpi/bin/mpirun.real; \
    printf '%s\n' '#!/bin/sh' 'exec /usr/local/mpi/bin/mpirun.real --allow-run-as-root "$@"' > /usr/local/mpi/bin/mpirun; \
    chmod 0755 /usr/local/mpi/bin/mpirun; \
    sed -i -e '$a\' /usr/local/mpi/etc/openmpi-mca-params.conf; \
    sed -i -e '/^[[:space:]]*btl[[:space:]]*=/d' /usr/local/mpi/etc/openmpi-mca-params.conf; \
    echo 'btl = ^openib' >> /usr/local/mpi/etc/openmpi-mca-params.conf; \
    /usr/local/mpi/bin/mpirun --version
ENV PATH=/usr/local/mpi/bin:$PATH \
    LD_LIBRARY_PATH=/usr/local/mpi/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# ---- block 4/7: gtest (Dockerfile.templates/gtest.j2) ----
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        ca-certificates \
        cmake \
        g++ \
        make \
        wget; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*; \
    mkdir -p /tmp/gtest; \
    cd /tmp/gtest; \
    wget -q -O gtest.tar.gz https://github.com/google/googletest/archive/refs/tags/v1.14.0.tar.gz; \
    echo "8ad598c73ad796e0d8280b082cebd82a630d73e73cd3c70057938a6501bba5d7  gtest.tar.gz" | sha256sum -c -; \
    tar -xzf gtest.tar.gz --strip-components=1; \
    cmake -S . -B build -DCMAKE_INSTALL_PREFIX=/usr/local -DCMAKE_POSITION_INDEPENDENT_CODE=ON; \
    cmake --build build -j "$(nproc)"; \
    cmake --install build; \
    cd /; \
    rm -rf /tmp/gtest; \
    test -f /usr/local/include/gtest/gtest.h

# ---- block 5/7: nccl (Dockerfile.templates/nccl.j2) ----
# (no NCCL: this platform's collective library comes with its SDK)

# ---- block 6/7: sshd (Dockerfile.templates/sshd.j2) ----
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

# ---- block 7/7: flagcx (Dockerfile.templates/flagcx.j2) ----
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        ca-certificates \
        git \
        make; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*
RUN set -eux; \
    git init -q /opt/FlagCX; \
    cd /opt/FlagCX; \
    git remote add origin https://github.com/flagos-ai/FlagCX.git; \
    git fetch -q --depth 1 origin v0.13.0; \
    git checkout -q FETCH_HEAD; \
    git submodule update --init --recursive --depth 1; \
    git log -1 --format='FlagCX %H %cd'
ENV CONTAINERCTL_FLAGCX_DIR=/opt/FlagCX
LABEL io.containerctl.flagcx.source="https://github.com/flagos-ai/FlagCX.git" \
      io.containerctl.flagcx.ref="v0.13.0"

WORKDIR /root
