# Configuration writers for the servers the benchmarks and tests run beside ours (sourced):
# the same nginx stream server and HAProxy TLS frontend everywhere.

# nginx_stream_conf DIR PORT BACKEND CERT KEY WORKERS [LINES]: DIR/nginx.conf, an nginx stream
# server on 127.0.0.1:PORT terminating TLS 1.2 and 1.3 in front of 127.0.0.1:BACKEND with
# tickets on; LINES go into the server block (a session cache, ticket keys, suites).
nginx_stream_conf() {
    mkdir -p "$1"
    cat >"$1/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes $6;
pid $1/nginx.pid;
error_log $1/error.log error;
events { worker_connections 4096; }
stream {
    server {
        listen 127.0.0.1:$2 ssl;
        ssl_certificate $4;
        ssl_certificate_key $5;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets on;
        ${7:-}
        proxy_pass 127.0.0.1:$3;
    }
}
CONF
}

# nginx_https_conf DIR PORT CERT KEY WORKERS LOG_FORMAT [LINES] [LISTEN_OPTIONS]: DIR/nginx.conf,
# nginx answering HTTPS on 127.0.0.1:PORT with "hello from nginx"; each request logged to
# DIR/access.log as LOG_FORMAT says (nginx variables; empty: no log); LINES go into the server
# block (versions, a session cache, tickets), LISTEN_OPTIONS onto its listen line (http2).
nginx_https_conf() {
    mkdir -p "$1"
    local log="access_log off;"
    [ -z "$6" ] || log="log_format t \"$6\"; access_log $1/access.log t;"
    cat >"$1/nginx.conf" <<CONF
worker_processes $5;
pid $1/nginx.pid;
error_log $1/error.log;
events { worker_connections 64; }
http {
    $log
    client_body_temp_path $1; proxy_temp_path $1;
    fastcgi_temp_path $1; uwsgi_temp_path $1; scgi_temp_path $1;
    server {
        listen 127.0.0.1:$2 ssl ${8:-};
        ssl_certificate $3;
        ssl_certificate_key $4;
        ${7:-}
        return 200 "hello from nginx\n";
    }
}
CONF
}

# haproxy_defaults: the defaults section every HAProxy here uses (TCP mode).
haproxy_defaults() {
    printf 'defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n'
    printf '    timeout server 30s\n'
}

# haproxy_tls_conf FILE PORT BACKEND PEM [GLOBAL_LINES] [BIND_OPTIONS]: HAProxy in TCP mode
# terminating TLS on 127.0.0.1:PORT (certificate and key in PEM) in front of
# 127.0.0.1:BACKEND.
haproxy_tls_conf() {
    cat >"$1" <<CONF
global
${5:-}
$(haproxy_defaults)
frontend fe
    bind 127.0.0.1:$2 ssl crt $4 ${6:-}
    default_backend be
backend be
    server b 127.0.0.1:$3
CONF
}
