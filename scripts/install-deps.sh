#!/usr/bin/env bash
# Installs the Debian packages Dockyard's build, tests and benchmarks need.
# Only what is missing is installed; without root it just reports what is missing.
set -euo pipefail
packages=(
  busybox-static   # test images and bundles
  libseccomp2      # seccomp filters, through ctypes
  runc crun        # peer OCI runtimes, for comparison tests and benchmarks
  docker.io        # real dockerd + containerd, drives dockyard-runtime in interop tests
  procps           # ps, used by `dockyard-runtime ps`
  util-linux       # script(1), for pty-driven tests
  time             # GNU time: peak RSS in benchmarks
  python3-venv
  skopeo           # copies images between OCI layouts and docker archives (image interop tests)
  apache2-utils    # htpasswd -B: the registry auth tests' password files
  docker-registry  # distribution 2.8: the reference registry the registry interop tests compare with
  debootstrap      # a real Debian rootfs for the image benchmark (cached)
  tini             # tini-static: the init `docker run --init` puts in the container
  nftables         # libnftables: the engine's firewall rules (NAT for published ports, isolation)
  iproute2         # ip/nsenter-side checks in networking tests
  curl             # networking acceptance tests reach published ports with it
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages (run as root to install): ${missing[*]}" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
