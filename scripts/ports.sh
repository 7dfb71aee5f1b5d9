# Loopback ports for the tests and benchmarks (sourced).

# free_port: a free TCP port on 127.0.0.1 (bound and released; the kernel does not hand it out
# again at once).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
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
