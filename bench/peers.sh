# SPDX-License-Identifier: MIT
# bench/peers.sh, sourced by bench/compare: the test PKI and the servers, one worker or thread
# each: tern-echo and tern-gateway, nginx, HAProxy, stunnel, openssl s_server. Sets
# srv_pid[NAME] and srv_port[NAME] for every server that listens (a missing peer is noted and
# skipped); uses compare's tmp, pids, note, say, die, techo, tgw, idle_n.
# ---- PKI (reused across runs) ---------------------------------------------------------------
pki=${TERN_COMPARE_PKI:-${TMPDIR:-/tmp}/tern-compare-pki}
make_pki() {
    mkdir -p "$pki" && chmod 700 "$pki" || return 1
    (
        cd "$pki" || exit 1
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
            -out ca.pem -subj "/CN=tern compare CA" -days 365 \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign,cRLSign || exit 1
        for k in ec rsa; do
            if [ $k = ec ]; then
                openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $k.key || exit 1
            else
                openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out $k.key || exit 1
            fi
            openssl req -new -key $k.key -subj /CN=localhost -out $k.csr || exit 1
            printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >$k.ext
            openssl x509 -req -in $k.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 \
                -sha256 -extfile $k.ext -out $k.pem || exit 1
            cat $k.pem $k.key >$k-combined.pem # HAProxy's crt: certificate and key in one file
        done
        # one fixed identity and key, read by tern-gateway, stunnel and tern-bench
        echo "bench-client:8b1f3a5209e477c25d900e6af321b84416cd6f3ea7580299d14cbe732a85e01b" >psk.txt
        chmod 600 ./*.key psk.txt ./*-combined.pem
    ) >"$tmp/pki.log" 2>&1
}
if [ -f "$pki/ec-combined.pem" ] && [ -f "$pki/rsa-combined.pem" ] && [ -f "$pki/psk.txt" ] &&
    openssl x509 -in "$pki/ec.pem" -noout -checkend 86400 >/dev/null 2>&1; then
    say "PKI: reusing $pki"
else
    rm -rf "$pki"
    make_pki || { cat "$tmp/pki.log" >&2; die "could not make the test PKI in $pki"; }
    say "PKI: made $pki (CA + ECDSA P-256 and RSA-2048 certificates for localhost)"
fi
psk_id=bench-client
psk_key=$(cut -d: -f2 "$pki/psk.txt")

# ---- ports, limits --------------------------------------------------------------------------
ulimit -n "$(ulimit -Hn)" 2>/dev/null
nofile=$(ulimit -n)
# a proxy holds 2 descriptors per idle connection (client + backend), the echo backend 1 and
# tern-bench 1; HAProxy wants 2 x maxconn + its own: keep 2N + 1000 under the limit
max_idle=$(((nofile - 1000) / 2))
if [ "$idle_n" -gt "$max_idle" ]; then
    note "note: --idle $idle_n lowered to $max_idle (ulimit -n is $nofile; proxies need 2 per connection)"
    idle_n=$max_idle
fi
port_in_use() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }
port_taken() { ss -Htan "sport = :$1" 2>/dev/null | grep -q .; } # any state, TIME_WAIT too
# below the ephemeral range (32768-60999 by default), where outgoing connections take ports
next_port=$((20000 + RANDOM % 10000))
alloc_port() {
    while port_taken $next_port; do next_port=$((next_port + 1)); done
    port=$next_port
    next_port=$((next_port + 1))
}
wait_listen() { # PORT PID NAME: bounded (10 s)
    for _ in $(seq 1 100); do
        port_in_use "$1" && return 0
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
    done
    return 1
}

mkdir -p "$tmp/logs"
declare -A srv_port srv_pid srv_backend srv_label
start_fail=0
# start NAME PORT [--backend] -- COMMAND...: starts it in the background, waits for the port
start() {
    local name=$1 p=$2
    shift 2
    "$@" >"$tmp/logs/$name.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    if ! wait_listen "$p" "$pid"; then
        note "skip: $name did not listen on 127.0.0.1:$p (log: $(tail -n 3 "$tmp/logs/$name.log" | tr '\n' ' '))"
        start_fail=1
        return 1
    fi
    srv_pid[$name]=$pid
    srv_port[$name]=$p
    return 0
}

ciphers12="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
suites13="TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
# the peers' groups, X25519 preferred, as real clients (OpenSSL, browsers, curl) offer it;
# tern-bench sends one X25519 key share by default, and hs13-ec-p256 offers P-256 alone
groups="X25519:P-256"

# plaintext echo backend for the proxies (nginx stream proxy_pass, HAProxy, stunnel, gateway)
alloc_port; echo_port=$port
start echo-backend $echo_port "$techo" --plain --threads 1 -l 127.0.0.1:$echo_port --log-level warn ||
    die "the plaintext echo backend did not start"
echo_pid=${srv_pid[echo-backend]}

# tern-echo: one per certificate, 1 reactor
for k in ec rsa; do
    alloc_port
    start tern-$k $port "$techo" --cert "$pki/$k.pem" --key "$pki/$k.key" --threads 1 \
        -l 127.0.0.1:$port --log-level warn
done
# tern-echo resuming TLS 1.2 by session ID (server cache, no TLS 1.2 tickets): resume12-sid
alloc_port
start tern-sid $port "$techo" --cert "$pki/ec.pem" --key "$pki/ec.key" --threads 1 \
    --session-cache -l 127.0.0.1:$port --log-level warn
# tern-gateway: PSK devices, and with a certificate (proxy rows: full handshakes, bulk, echo)
alloc_port
start tern-gateway $port "$tgw" --psk-file "$pki/psk.txt" --backend 127.0.0.1:$echo_port \
    --threads 1 -l 127.0.0.1:$port --watch 0 --log-level warn
alloc_port
start tern-gw-ec $port "$tgw" --psk-file "$pki/psk.txt" --cert "$pki/ec.pem" --key "$pki/ec.key" \
    --backend 127.0.0.1:$echo_port --threads 1 -l 127.0.0.1:$port --watch 0 --log-level warn

# nginx: stream module, 1 worker; `return ""` (handshake, nothing sent) and proxy_pass to
# the echo backend (bulk, echo, idle)
nginx_mod=""
for m in /usr/lib/nginx/modules/ngx_stream_module.so /usr/share/nginx/modules/ngx_stream_module.so; do
    [ -f "$m" ] && nginx_mod=$m && break
done
if ! command -v nginx >/dev/null; then
    note "skip: nginx (not installed: scripts/bootstrap --bench, or apt-get install nginx libnginx-mod-stream)"
elif [ -z "$nginx_mod" ] && ! nginx -V 2>&1 | grep -q -- '--with-stream[^=]'; then
    note "skip: nginx (no stream module: apt-get install libnginx-mod-stream)"
else
    alloc_port; np_ec=$port; alloc_port; np_rsa=$port; alloc_port; np_px=$port
    alloc_port; np_http=$port; alloc_port; np_sid=$port
    mkdir -p "$tmp/nginx"
    {
        [ -n "$nginx_mod" ] && echo "load_module $nginx_mod;"
        [ "$(id -u)" = 0 ] && echo "user $(id -un) $(id -gn);"
        cat <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/logs/nginx-error.log warn;
worker_rlimit_nofile $nofile;
events { worker_connections $((nofile - 100)); }
stream {
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers $ciphers12;
    ssl_conf_command Ciphersuites $suites13;
    ssl_prefer_server_ciphers on;
    ssl_ecdh_curve $groups;
    server { listen 127.0.0.1:$np_ec ssl; ssl_certificate $pki/ec.pem; ssl_certificate_key $pki/ec.key; return ""; }
    server { listen 127.0.0.1:$np_rsa ssl; ssl_certificate $pki/rsa.pem; ssl_certificate_key $pki/rsa.key; return ""; }
    server { listen 127.0.0.1:$np_px ssl; ssl_certificate $pki/ec.pem; ssl_certificate_key $pki/ec.key;
             proxy_pass 127.0.0.1:$echo_port; proxy_timeout 600s; }
    # TLS 1.2 resumption by session ID: no tickets, a session cache
    server { listen 127.0.0.1:$np_sid ssl; ssl_certificate $pki/ec.pem; ssl_certificate_key $pki/ec.key;
             ssl_session_tickets off; ssl_session_cache shared:SID:10m; return ""; }
}
# terminating and keeping the connection (idle-term): HTTP waits for a request
http {
    access_log off;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers $ciphers12;
    ssl_conf_command Ciphersuites $suites13;
    ssl_ecdh_curve $groups;
    client_header_timeout 600s;
    keepalive_timeout 600s;
    server { listen 127.0.0.1:$np_http ssl; ssl_certificate $pki/ec.pem; ssl_certificate_key $pki/ec.key; return 200 "ok"; }
}
EOF
    } >"$tmp/nginx/nginx.conf"
    if start nginx-ec $np_ec nginx -p "$tmp/nginx" -e "$tmp/logs/nginx-error.log" -c "$tmp/nginx/nginx.conf"; then
        srv_pid[nginx-rsa]=${srv_pid[nginx-ec]}; srv_port[nginx-rsa]=$np_rsa
        srv_pid[nginx-px]=${srv_pid[nginx-ec]}; srv_port[nginx-px]=$np_px
        srv_pid[nginx-http]=${srv_pid[nginx-ec]}; srv_port[nginx-http]=$np_http
        srv_pid[nginx-sid]=${srv_pid[nginx-ec]}; srv_port[nginx-sid]=$np_sid
    fi
fi

# HAProxy: 1 thread; HTTP frontends answering nothing until a request (handshake rows: no
# backend connection), a TCP frontend to the echo backend (bulk, echo, idle)
if ! command -v haproxy >/dev/null; then
    note "skip: haproxy (not installed: scripts/bootstrap --bench, or apt-get install haproxy)"
else
    alloc_port; hp_ec=$port; alloc_port; hp_rsa=$port; alloc_port; hp_px=$port; alloc_port; hp_sid=$port
    cat >"$tmp/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $((idle_n + 100))
    ssl-default-bind-ciphers $ciphers12
    ssl-default-bind-ciphersuites $suites13
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode tcp
    timeout connect 5s
    timeout client 600s
    timeout server 600s
    timeout http-request 600s
frontend hs_ec
    mode http
    bind 127.0.0.1:$hp_ec ssl crt $pki/ec-combined.pem curves $groups
    http-request return status 200 content-type text/plain string ok
frontend hs_rsa
    mode http
    bind 127.0.0.1:$hp_rsa ssl crt $pki/rsa-combined.pem curves $groups
    http-request return status 200 content-type text/plain string ok
frontend hs_sid
    mode http
    bind 127.0.0.1:$hp_sid ssl crt $pki/ec-combined.pem curves $groups no-tls-tickets
    http-request return status 200 content-type text/plain string ok
frontend tcp_ec
    bind 127.0.0.1:$hp_px ssl crt $pki/ec-combined.pem curves $groups
    default_backend echo
backend echo
    server echo 127.0.0.1:$echo_port
EOF
    if start haproxy-ec $hp_ec haproxy -db -f "$tmp/haproxy.cfg"; then
        srv_pid[haproxy-rsa]=${srv_pid[haproxy-ec]}; srv_port[haproxy-rsa]=$hp_rsa
        srv_pid[haproxy-px]=${srv_pid[haproxy-ec]}; srv_port[haproxy-px]=$hp_px
        srv_pid[haproxy-sid]=${srv_pid[haproxy-ec]}; srv_port[haproxy-sid]=$hp_sid
    fi
fi

# stunnel: certificate services and a PSK service, each connecting to the echo backend
if ! command -v stunnel >/dev/null; then
    note "skip: stunnel (not installed: scripts/bootstrap, or apt-get install stunnel4)"
else
    alloc_port; sp_ec=$port; alloc_port; sp_rsa=$port; alloc_port; sp_psk=$port
    {
        printf 'foreground = yes\npid =\ndebug = 3\noutput = %s\n' "$tmp/logs/stunnel-service.log"
        for k in ec rsa; do
            p=$sp_ec; [ $k = rsa ] && p=$sp_rsa
            printf '\n[%s]\naccept = 127.0.0.1:%s\nconnect = 127.0.0.1:%s\ncert = %s\nkey = %s\n' \
                $k $p $echo_port "$pki/$k.pem" "$pki/$k.key"
            printf 'sslVersionMin = TLSv1.2\nciphers = %s\nciphersuites = %s\ncurves = %s\noptions = CIPHER_SERVER_PREFERENCE\n' \
                "$ciphers12" "$suites13" "$groups"
        done
        # ALLOW_NO_DHE_KEX: without it an OpenSSL server refuses TLS 1.3 psk_ke
        printf '\n[psk]\naccept = 127.0.0.1:%s\nconnect = 127.0.0.1:%s\nPSKsecrets = %s\n' \
            $sp_psk $echo_port "$pki/psk.txt"
        printf 'ciphers = PSK-AES128-GCM-SHA256:ECDHE-PSK-CHACHA20-POLY1305\nciphersuites = TLS_AES_128_GCM_SHA256\n'
        printf 'curves = %s\noptions = ALLOW_NO_DHE_KEX\n' "$groups"
    } >"$tmp/stunnel.conf"
    if start stunnel-ec $sp_ec stunnel "$tmp/stunnel.conf"; then
        srv_pid[stunnel-rsa]=${srv_pid[stunnel-ec]}; srv_port[stunnel-rsa]=$sp_rsa
        srv_pid[stunnel-psk]=${srv_pid[stunnel-ec]}; srv_port[stunnel-psk]=$sp_psk
        wait_listen $sp_psk ${srv_pid[stunnel-ec]} || true
    fi
fi

# openssl s_server -www: one process, one connection at a time (handshake rows only)
for k in ec rsa; do
    alloc_port
    start s_server-$k $port openssl s_server -accept 127.0.0.1:$port -cert "$pki/$k.pem" \
        -key "$pki/$k.key" -www -quiet -serverpref -groups $groups -cipher "$ciphers12" \
        -ciphersuites "$suites13"
done
alloc_port # TLS 1.2 resumption by session ID (s_server keeps a session cache)
start s_server-sid $port openssl s_server -accept 127.0.0.1:$port -cert "$pki/ec.pem" \
    -key "$pki/ec.key" -www -quiet -serverpref -groups $groups -cipher "$ciphers12" -no_ticket
for s in "${!srv_pid[@]}"; do
    printf '%s\t%s\t%s\n' "$s" "${srv_port[$s]}" "${srv_pid[$s]}"
done | sort >"$out/servers.tsv"

