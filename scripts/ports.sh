# Loopback ports for the tests and benchmarks (sourced).

# free_port: a free TCP port on 127.0.0.1, below the kernel's ephemeral range (32768 and up), so
# that no outgoing connection can take it between now and the bind that uses it. Tests run side
# by side, so each port handed out is reserved for an hour by a directory under
# $TMPDIR/tlsr-ports; a port is handed out only when the reservation and a bind both succeed.
# free_port OFFSET: the same, with port + OFFSET free and reserved too.
free_port() {
    python3 "$(dirname "${BASH_SOURCE[0]}")/free_port.py" "$@"
}

# port_listening PORT: waits (bounded, 10 s) until something accepts on 127.0.0.1:PORT; false
# when nothing does.
port_listening() {
    local i
    for i in $(seq 1 100); do
        (exec 7<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
