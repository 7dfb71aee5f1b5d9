#!/usr/bin/env bash
# Installs the Debian packages a target needs, when they are missing.
# usage: scripts/deps.sh build|test|run|bench|fuzz|deb
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -euo pipefail

build_pkgs=(cmake gcc make pkg-config libssl-dev libcmocka-dev libev-dev libinih-dev libhiredis-dev
    libgnutls28-dev libsystemd-dev)
run_pkgs=(openssl curl)
test_pkgs=(openssl python3 procps curl gnutls-bin nodejs nginx-light libnginx-mod-stream haproxy
    hitch stunnel4 util-linux redis-server iproute2 faketime strace gdb apache2 valgrind
    chromium default-jre-headless redis-sentinel bsdutils systemd dpkg-dev debhelper fakeroot
    lintian tshark tcpdump prometheus h2o nghttp2-proxy golang-go)
deb_pkgs=(dpkg-dev debhelper fakeroot lintian git)
bench_pkgs=(openssl python3 procps nginx-light libnginx-mod-stream haproxy hitch stunnel4
    util-linux redis-server)

case "${1:-build}" in
build) want=("${build_pkgs[@]}") ;;
run) want=("${build_pkgs[@]}" "${run_pkgs[@]}") ;;
test) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
bench) want=("${build_pkgs[@]}" "${bench_pkgs[@]}") ;;
fuzz) want=("${build_pkgs[@]}" clang) ;;
deb) want=("${build_pkgs[@]}" "${deb_pkgs[@]}") ;;
*) echo "usage: $0 build|test|run|bench|fuzz|deb" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "error deps: missing Debian packages: ${missing[*]}" >&2
    echo "error deps: run as root: apt-get update && $cmd" >&2
    exit 1
fi
echo "info deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
$cmd
