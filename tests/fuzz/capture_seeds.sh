#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Writes the seed corpora of the TLS fuzz targets from real clients, once (the results are
# checked in under tests/fuzz/corpus/):
#   server/          what `openssl s_client` and tern-bench send to tern-echo (certificate,
#                    with and without a client certificate) and tern-gateway (PSK), TLS 1.3 and
#                    1.2, recorded by capture.py between them over 127.0.0.1; and resuming
#                    ClientHellos (tickets sealed with the harness's fixed ticket key)
#   server_records/  short programs for every connection kind (see fuzz_server_records.c)
#   files/           identity and ticket-key files, sessions exported by wolfSSL clients
# Usage: tests/fuzz/capture_seeds.sh BUILD_DIR
#   BUILD_DIR: a normal build with apps/ and tests/fuzz_server_records_replay built
set -euo pipefail
build=${1:?usage: capture_seeds.sh BUILD_DIR}
build=$(cd "$build" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
corpus=$here/corpus
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
mkdir -p "$corpus/server" "$corpus/server_records" "$corpus/files"

# The harness's key and certificate (fuzz_cert.h) as PEM files.
python3 - "$here/fuzz_cert.h" "$tmp" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
for name, out in (("fuzz_key_der", "key.der"), ("fuzz_cert_der", "cert.der")):
    body = re.search(name + r"\[\] = \{(.*?)\};", text, re.S).group(1)
    open(sys.argv[2] + "/" + out, "wb").write(bytes(int(x, 16) for x in re.findall(r"0x([0-9a-f]{2})", body)))
EOF
openssl x509 -inform DER -in "$tmp/cert.der" -out "$tmp/cert.pem"
openssl ec -inform DER -in "$tmp/key.der" -out "$tmp/key.pem" 2>/dev/null
psk_hex=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
printf 'fuzz:%s\nfuzz-chacha:%s\nfuzz-aes256:%s\nfuzz-ccm:%s\n' "$psk_hex" "$psk_hex" "$psk_hex" \
    "$psk_hex" >"$tmp/ids.psk"
chmod 600 "$tmp/ids.psk"

port=$((20000 + $$ % 20000))
next_port() { port=$((port + 1)); } # sets $port (no subshell: it must stick)
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "port $1 never opened" >&2
    return 1
}

next_port; echo_cert=$port
"$build/apps/tern-echo" --listen "127.0.0.1:$echo_cert" --cert "$tmp/cert.pem" \
    --key "$tmp/key.pem" --log-level error 2>/dev/null &
pids+=($!)
next_port; echo_auth=$port
"$build/apps/tern-echo" --listen "127.0.0.1:$echo_auth" --cert "$tmp/cert.pem" \
    --key "$tmp/key.pem" --client-ca "$tmp/cert.pem" --verify-client --alpn h2,http/1.1 \
    --log-level error 2>/dev/null &
pids+=($!)
next_port; backend=$port
"$build/apps/tern-echo" --plain --listen "127.0.0.1:$backend" --log-level error 2>/dev/null &
pids+=($!)
next_port; gateway=$port
"$build/apps/tern-gateway" --listen "127.0.0.1:$gateway" --psk-file "$tmp/ids.psk" \
    --backend "127.0.0.1:$backend" --log-level error 2>/dev/null &
pids+=($!)
for p in "$echo_cert" "$echo_auth" "$backend" "$gateway"; do wait_port "$p"; done

# capture NAME SELECTOR_HEX SERVER_PORT CLIENT_COMMAND... (the client's port is $RELAY)
capture() {
    local name=$1 sel=$2 server=$3
    shift 3
    local relay
    next_port
    relay=$port
    python3 "$here/capture.py" "$relay" "$server" "$corpus/server/$name" "$sel" >"$tmp/relay.out" &
    local rp=$!
    for _ in $(seq 100); do grep -q ready "$tmp/relay.out" 2>/dev/null && break; sleep 0.05; done
    RELAY=$relay "$@" >/dev/null 2>&1 </dev/null || true
    wait "$rp" || true
    printf '%-36s %6d bytes\n' "server/$name" "$(stat -c %s "$corpus/server/$name")"
}
s_client() { printf 'hello\n' | timeout 10 openssl s_client -connect "127.0.0.1:$RELAY" -no_ign_eof "$@"; }
bench() { timeout 20 "$build/apps/tern-bench" --target "127.0.0.1:$RELAY" -c 1 -n 1 -q "$@"; }

# fuzz_server's selector: configuration (0 certificate, 1 PSK, 2 full) | versions << 2
# (0 both, 1 TLS 1.3, 2 TLS 1.2)
capture openssl_tls13_cert 00 "$echo_cert" s_client -tls1_3 -CAfile "$tmp/cert.pem"
capture openssl_tls13_chacha 04 "$echo_cert" s_client -tls1_3 -CAfile "$tmp/cert.pem" \
    -ciphersuites TLS_CHACHA20_POLY1305_SHA256
capture openssl_tls13_p256 04 "$echo_cert" s_client -tls1_3 -groups P-256 -CAfile "$tmp/cert.pem"
capture openssl_tls12_cert 08 "$echo_cert" s_client -tls1_2 -CAfile "$tmp/cert.pem"
capture openssl_tls12_chacha 00 "$echo_cert" s_client -tls1_2 -cipher ECDHE-ECDSA-CHACHA20-POLY1305
capture openssl_tls13_client_cert 02 "$echo_auth" s_client -tls1_3 -cert "$tmp/cert.pem" \
    -key "$tmp/key.pem" -servername alt.test -alpn h2
capture openssl_tls12_client_cert 0a "$echo_auth" s_client -tls1_2 -cert "$tmp/cert.pem" \
    -key "$tmp/key.pem" -servername alt.test -alpn http/1.1
capture openssl_tls13_psk 01 "$gateway" s_client -tls1_3 -psk_identity fuzz -psk "$psk_hex"
capture openssl_tls13_psk_chacha 05 "$gateway" s_client -tls1_3 -psk_identity fuzz -psk "$psk_hex" \
    -ciphersuites TLS_CHACHA20_POLY1305_SHA256
capture openssl_tls13_psk_id_chacha 05 "$gateway" s_client -tls1_3 -psk_identity fuzz-chacha \
    -psk "$psk_hex" -ciphersuites TLS_CHACHA20_POLY1305_SHA256
capture openssl_tls13_psk_id_aes256 05 "$gateway" s_client -tls1_3 -psk_identity fuzz-aes256 \
    -psk "$psk_hex" -ciphersuites TLS_AES_256_GCM_SHA384
capture openssl_tls13_psk_id_ccm 05 "$gateway" s_client -tls1_3 -psk_identity fuzz-ccm \
    -psk "$psk_hex" -ciphersuites TLS_AES_128_CCM_SHA256
capture openssl_tls13_psk_unknown 01 "$gateway" s_client -tls1_3 -psk_identity nobody -psk "$psk_hex"
capture openssl_tls12_psk 09 "$gateway" s_client -tls1_2 -psk_identity fuzz -psk "$psk_hex" \
    -cipher PSK-AES128-GCM-SHA256
capture openssl_tls12_psk_cbc 09 "$gateway" s_client -tls1_2 -psk_identity fuzz -psk "$psk_hex" \
    -cipher PSK-AES128-CBC-SHA256
capture openssl_tls12_ecdhe_psk 01 "$gateway" s_client -tls1_2 -psk_identity fuzz -psk "$psk_hex" \
    -cipher ECDHE-PSK-CHACHA20-POLY1305
capture tern_tls13_cert 04 "$echo_cert" bench --tls 1.3 --ca "$tmp/cert.pem" --sni localhost
capture tern_tls12_cert 08 "$echo_cert" bench --tls 1.2 --ca "$tmp/cert.pem" --sni localhost
capture tern_tls13_mlkem 00 "$echo_cert" bench --tls 1.3 --ca "$tmp/cert.pem" --sni localhost \
    --groups X25519MLKEM768
capture tern_tls13_psk 01 "$gateway" bench --mode psk --tls 1.3 --psk-identity fuzz \
    --psk-key "$psk_hex"
capture tern_tls12_psk 09 "$gateway" bench --mode psk --tls 1.2 --psk-identity fuzz \
    --psk-key "$psk_hex"

# fuzz_server_records: byte 0 = variant | resume << 4 | chunking << 5, then operations:
# APP 00, RAW 01, FLIP 02, DELIVER 03, KEYUPDATE 04, SERVER 05, CLOSE 06, TRUNC 07, DUP 08
rec() { printf "$2" >"$corpus/server_records/$1"; }
for v in $(seq 0 15); do
    x=$(printf '%02x' "$v")
    rec "v${x}_app" "\\x$x\\x00\\x00\\x40\\x03\\x05\\x00\\x10\\x06\\x03"
    rec "v${x}_resume_app" "\\x$(printf '%02x' $((v | 16)))\\x00\\x00\\x40\\x03"
done
rec v00_keyupdate '\x00\x04\x03\x00\x00\x20\x03\x04\x01\x03'
rec v00_flip '\x00\x00\x00\x40\x02\x00\x08\x01\x03'
rec v00_dup '\x00\x00\x00\x40\x08\x03'
rec v00_trunc '\x00\x00\x00\x40\x07\x00\x10\x03'
rec v00_raw_alert '\x00\x01\x07\x15\x03\x03\x00\x02\x02\x0a\x03'
rec v00_raw_ccs '\x00\x01\x06\x14\x03\x03\x00\x01\x01\x03'
rec v00_big_chunked '\x40\x00\x4e\x20\x03'
rec v03_raw_hello '\x03\x01\x09\x16\x03\x03\x00\x04\x00\x00\x00\x00\x03'
rec v08_cbc_flip '\x08\x00\x00\x40\x02\x00\x30\x80\x03'
rec v09_ccm8_keyupdate '\x09\x04\x01\x03\x00\x00\x20\x03'
for f in "$corpus"/server_records/*; do printf '%-36s %6d bytes\n' "server_records/${f##*/}" "$(stat -c %s "$f")"; done

# Resuming ClientHellos and exported sessions, from the records harness itself.
mkdir -p "$tmp/dump"
for v in 00 03 06 07 0c; do
    printf "\\x$(printf '%02x' $((0x$v | 16)))" >"$tmp/resume_$v"
    FUZZ_DUMP_DIR=$tmp/dump "$build/tests/fuzz_server_records_replay" "$tmp/resume_$v" >/dev/null 2>&1
done
for f in "$tmp"/dump/resume_flight_*; do cp "$f" "$corpus/server/tern_${f##*/}"; done
for f in "$tmp"/dump/session_*; do cp "$f" "$corpus/files/${f##*/}"; done

# Identity and ticket-key files (fuzz_files: byte 0 % 3 = 0 identities, 1 ticket keys).
file_seed() { { printf "$2"; cat; } >"$corpus/files/$1"; }
printf 'fuzz:%s\n' "$psk_hex" | file_seed ids_one '\x00'
printf '# devices\n\ndev-1:%s\ndev:2:%s:sha384\r\nwith space:%s  \n' \
    "00112233445566778899aabbccddeeff" \
    "$psk_hex$psk_hex" "$psk_hex" | file_seed ids_many '\x00'
printf 'dup:%s\ndup:%s\n' "$psk_hex" "$psk_hex" | file_seed ids_duplicate '\x00'
printf 'short:0011\n' | file_seed ids_short_key '\x00'
printf 'nocolon\n' | file_seed ids_no_colon '\x00'
printf '# ticket keys\n%s\n%s\n' \
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f" \
    "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f" |
    file_seed ticket_keys_two '\x01'
printf '  %s  \n' \
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f" |
    file_seed ticket_keys_spaces '\x01'
printf '00112233\n' | file_seed ticket_keys_short '\x01'
printf 'zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f\n' |
    file_seed ticket_keys_not_hex '\x01'
for f in "$corpus"/files/*; do printf '%-36s %6d bytes\n' "files/${f##*/}" "$(stat -c %s "$f")"; done
