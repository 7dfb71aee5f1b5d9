#!/usr/bin/env bash
# What `make install` gives a C developer: three libraries, each with its pkg-config file,
# linked as docs/API.md says, shared and static.
# usage: test_install.sh SCENARIO
#   libs   install into a temporary prefix; a core program links with `pkg-config tlsresume`
#          alone and needs neither hiredis nor libev; a fleet program links with
#          tlsresume-fleet (and, the control, not with tlsresume alone); the GnuTLS example
#          links with tlsresume-gnutls, shared and static; each program runs
#   deb    make deb's packages from a copy of the tree: built, installed with dpkg -i, the
#          installed binary serves and resumes, the installed headers and .pc files build the
#          examples, both systemd units pass systemd-analyze verify; removed after
. "$(dirname "$0")/lib/common.sh"
scenario=${1:?scenario}
command -v pkg-config >/dev/null || fail "pkg-config is not installed (scripts/deps.sh test)"

case "$scenario" in
libs)
    cmake --install "$BUILD_DIR" --prefix "$WORK/prefix" >"$WORK/install.log" 2>&1 ||
        fail "install: $(tail -3 "$WORK/install.log")"
    lib=$(ls -d "$WORK"/prefix/lib*/ | head -1)
    export PKG_CONFIG_PATH="${lib}pkgconfig"
    for pc in tlsresume tlsresume-fleet tlsresume-gnutls; do
        pkg-config --exists "$pc" || fail "no $pc.pc installed: $(pkg-config --print-errors "$pc" 2>&1)"
    done
    # The objects were built with sanitizers in the ASan tree; programs must be too.
    cflags=()
    if grep -q '^TLSR_SANITIZE:BOOL=ON' "$BUILD_DIR/CMakeCache.txt"; then
        cflags=(-fsanitize=address,undefined)
    fi
    needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' '; }
    make_cert

    # The core API (an SSL_CTX with the cache and key ring) from `pkg-config tlsresume` alone.
    # shellcheck disable=SC2046
    cc "${cflags[@]}" -o "$WORK/attach" "$SRC_DIR/examples/attach.c" \
        $(pkg-config --cflags --libs tlsresume) 2>"$WORK/attach.log" ||
        fail "the core example does not link: $(cat "$WORK/attach.log")"
    deps=$(needed "$WORK/attach")
    echo "attach needs: $deps"
    case "$deps" in *libtlsresume.so*) ;; *) fail "attach is not linked to libtlsresume.so: $deps" ;; esac
    case "$deps" in *hiredis* | *libev* | *fleet*) fail "a core program needs fleet libraries: $deps" ;; esac
    LD_LIBRARY_PATH="$lib" "$WORK/attach" "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/attach.out" ||
        fail "attach failed"
    expect attach "cache ready"

    # A fleet program: tlsresume-fleet links it; the core's flags alone do not (the control).
    cat >"$WORK/fleet.c" <<'C'
#include <stdio.h>
#include <tlsresume/fleet.h>
int main(void)
{
    if (tlsr_fleet_endpoint_check("redis://127.0.0.1:6379") != TLSR_OK ||
        tlsr_fleet_endpoint_check("redis://127.0.0.1:99999") == TLSR_OK) {
        return 1;
    }
    printf("refused: %s\n", tlsr_last_error());
    return 0;
}
C
    # shellcheck disable=SC2046
    if cc "${cflags[@]}" -o "$WORK/fleet_core" "$WORK/fleet.c" $(pkg-config --cflags --libs tlsresume) \
        2>"$WORK/fleet_core.log"; then
        fail "a fleet program linked without libtlsresume-fleet: the core still carries the fleet"
    fi
    grep -q "undefined reference to .tlsr_fleet_endpoint_check" "$WORK/fleet_core.log" ||
        fail "control: unexpected link error: $(cat "$WORK/fleet_core.log")"
    # shellcheck disable=SC2046
    cc "${cflags[@]}" -o "$WORK/fleet" "$WORK/fleet.c" $(pkg-config --cflags --libs tlsresume-fleet) \
        2>"$WORK/fleet.log" || fail "the fleet program does not link: $(cat "$WORK/fleet.log")"
    deps=$(needed "$WORK/fleet")
    echo "fleet needs: $deps"
    case "$deps" in *libtlsresume-fleet.so*) ;; *) fail "not linked to libtlsresume-fleet.so: $deps" ;; esac
    LD_LIBRARY_PATH="$lib" "$WORK/fleet" >"$WORK/fleet.out" || fail "the fleet program failed"
    expect fleet "refused: "

    # The GnuTLS adapter, shared, then static (every library from its .a).
    # shellcheck disable=SC2046
    cc "${cflags[@]}" -o "$WORK/gnutls_server" "$SRC_DIR/examples/gnutls_server.c" \
        $(pkg-config --cflags --libs tlsresume-gnutls) -lev 2>"$WORK/gnutls.log" ||
        fail "the GnuTLS example does not link: $(cat "$WORK/gnutls.log")"
    deps=$(needed "$WORK/gnutls_server")
    echo "gnutls_server needs: $deps"
    case "$deps" in *libtlsresume-gnutls.so*) ;; *) fail "not linked to libtlsresume-gnutls.so: $deps" ;; esac
    # Static: our three archives, the system's shared libraries (as --static lists them for
    # our libraries: hiredis and libev are private dependencies of the fleet's archive).
    private=$(pkg-config --static --libs tlsresume-fleet)
    case "$private" in *-lhiredis*-lev* | *-lev*-lhiredis*) ;; *) fail "tlsresume-fleet.pc --static lacks hiredis or libev: $private" ;; esac
    static=("$lib/libtlsresume-gnutls.a" "$lib/libtlsresume-fleet.a" "$lib/libtlsresume.a")
    # shellcheck disable=SC2207
    static+=($(pkg-config --libs gnutls hiredis libssl libcrypto) -lev -lpthread)
    cc "${cflags[@]}" -o "$WORK/gnutls_static" "$SRC_DIR/examples/gnutls_server.c" \
        $(pkg-config --cflags tlsresume-gnutls) "${static[@]}" -lev 2>"$WORK/static.log" ||
        fail "the GnuTLS example does not link statically: $(cat "$WORK/static.log")"
    deps=$(needed "$WORK/gnutls_static")
    echo "gnutls_static needs: $deps"
    case "$deps" in *libtlsresume*) fail "the static program needs our shared libraries: $deps" ;; esac
    for prog in gnutls_server gnutls_static; do
        set +e
        LD_LIBRARY_PATH="$lib" "$WORK/$prog" >"$WORK/$prog.out" 2>&1
        rc=$?
        set -e
        [ "$rc" = 2 ] && grep -q "usage" "$WORK/$prog.out" || fail "$prog without arguments: rc=$rc $(cat "$WORK/$prog.out")"
    done
    ;;
deb)
    for cmd in dpkg-buildpackage dh lintian systemd-analyze; do
        command -v "$cmd" >/dev/null || fail "$cmd is not installed (scripts/deps.sh test)"
    done
    if dpkg-query -W -f='${Status}' tlsresume 2>/dev/null | grep -q "install ok installed"; then
        fail "a tlsresume package is installed here already; this test would replace it"
    fi
    purge() {
        dpkg --purge libtlsresume-dev tlsresume libtlsresume0 >"$WORK/purge.log" 2>&1 || true
    }
    trap 'purge; cleanup' EXIT
    bash "$SRC_DIR/scripts/deb.sh" "$WORK/deb" >"$WORK/deb.out" 2>&1 || fail "make deb: $(tail -5 "$WORK/deb.out")"
    cat "$WORK/deb.out"
    for p in tlsresume libtlsresume0 libtlsresume-dev; do
        ls "$WORK"/deb/"${p}"_*.deb >/dev/null 2>&1 || fail "no $p package"
    done
    dpkg -i "$WORK"/deb/libtlsresume0_*.deb "$WORK"/deb/tlsresume_*.deb \
        "$WORK"/deb/libtlsresume-dev_*.deb >"$WORK/dpkg.log" 2>&1 || fail "dpkg -i: $(tail -5 "$WORK/dpkg.log")"
    [ "$(command -v tlsresume)" = /usr/bin/tlsresume ] || fail "tlsresume is not /usr/bin/tlsresume"
    getent passwd _tlsresume >/dev/null || fail "no _tlsresume user"
    [ -f /etc/tlsresume/serve.ini ] || fail "no /etc/tlsresume/serve.ini"
    man -w tlsresume-serve >/dev/null 2>&1 || fail "no man page tlsresume-serve"
    # The units: as systemd reads them (the template through an instance of it).
    unit_dir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /lib/systemd/system)
    [ -f "$unit_dir/tlsresume.service" ] || unit_dir=/lib/systemd/system
    cp "$unit_dir/tlsresume-keys-sync@.service" "$WORK/tlsresume-keys-sync@test.service"
    for u in "$unit_dir/tlsresume.service" "$WORK/tlsresume-keys-sync@test.service"; do
        systemd-analyze verify "$u" >"$WORK/verify.log" 2>&1 || fail "systemd-analyze verify $u: $(cat "$WORK/verify.log")"
    done
    # The installed binary serves and resumes, configured as docs/DEPLOY.md says: the key
    # readable by the group _tlsresume, /etc/tlsresume/serve.ini, run as the service's user.
    start_backend http
    make_cert
    PORT=$(free_port)
    install -m 640 -g _tlsresume "$WORK/cert.pem" "$WORK/key.pem" /etc/tlsresume/
    cp /etc/tlsresume/serve.ini "$WORK/serve.ini.orig"
    printf '[serve]\nlisten = 127.0.0.1:%s\nbackend = 127.0.0.1:%s\ncert = /etc/tlsresume/cert.pem\nkey = /etc/tlsresume/key.pem\nadmin = off\nworkers = 2\ncache_size = 1m\n' \
        "$PORT" "$BACKEND_PORT" >/etc/tlsresume/serve.ini
    purge() {
        rm -f /etc/tlsresume/cert.pem /etc/tlsresume/key.pem
        dpkg --purge libtlsresume-dev tlsresume libtlsresume0 >"$WORK/purge.log" 2>&1 || true
    }
    # As the unit runs it: its user, and LimitMEMLOCK=infinity where this machine lets root
    # raise it (the cache is locked memory; the configuration keeps it small for the rest).
    as_service() {
        ulimit -l unlimited 2>/dev/null || true
        exec setpriv --reuid _tlsresume --regid _tlsresume --init-groups -- "$@"
    }
    (as_service /usr/bin/tlsresume serve --config /etc/tlsresume/serve.ini --check-config) \
        >"$WORK/check.out" 2>&1 || fail "--check-config as _tlsresume: $(cat "$WORK/check.out")"
    (as_service /usr/bin/tlsresume serve --config /etc/tlsresume/serve.ini) \
        >"$WORK/serve.out" 2>"$WORK/serve.log" &
    SERVE_PID=$!
    PIDS+=("$SERVE_PID")
    wait_serve_log "event=started"
    timeout 20 openssl s_client -connect "127.0.0.1:$PORT" -tls1_2 -reconnect </dev/null \
        >"$WORK/reconnect.out" 2>&1 || true
    [ "$(grep -c '^Reused' "$WORK/reconnect.out")" = 5 ] || fail "the installed serve did not resume"
    # The installed headers, libraries and .pc files build the examples, with pkg-config alone.
    # shellcheck disable=SC2046
    cc -o "$WORK/attach" "$SRC_DIR/examples/attach.c" $(pkg-config --cflags --libs tlsresume) \
        2>"$WORK/cc.log" || fail "attach does not build: $(cat "$WORK/cc.log")"
    "$WORK/attach" "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/attach.out" || fail "attach failed"
    expect attach "cache ready"
    # shellcheck disable=SC2046
    cc -o "$WORK/gnutls_server" "$SRC_DIR/examples/gnutls_server.c" \
        $(pkg-config --cflags --libs tlsresume-gnutls) -lev 2>"$WORK/cc.log" ||
        fail "gnutls_server does not build: $(cat "$WORK/cc.log")"
    echo "lintian: $(grep -c '^[EW]:' "$WORK/deb/lintian.txt" || true) errors and warnings"
    grep '^[EW]:' "$WORK/deb/lintian.txt" || true
    stop_serve
    purge
    ! dpkg-query -W -f='${Status}' tlsresume 2>/dev/null | grep -q "install ok installed" ||
        fail "the package was not removed"
    ;;
*)
    fail "unknown scenario $scenario"
    ;;
esac
echo "PASS: $scenario"
