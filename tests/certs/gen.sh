#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Writes tern's test PKI into OUTDIR (created if needed) with the openssl CLI (1.1.1 or 3.x):
#
#   ca.pem ca.key              the test CA ("tern test CA")
#   other-ca.pem other-ca.key  an unrelated CA that signed nothing the tests use
#   server-rsa.pem/.key        RSA-2048 server cert, DNS:localhost IP:127.0.0.1, chain
#                              leaf first (leaf, then ca.pem); key PKCS#8 PEM
#   server-rsa-enc.key         the same RSA key, PKCS#8 PEM encrypted (PBES2 AES-256-CBC),
#                              passphrase "tern-test"
#   server-rsa-enc-trad.key    the same, traditional PEM ("Proc-Type: 4,ENCRYPTED",
#                              DEK-Info AES-256-CBC), passphrase "tern-test"
#   server-ec.pem/.key         ECDSA P-256 server cert (leaf only), same names
#   server-ec.der              server-ec.pem's leaf, DER
#   server-ec.key.der          server-ec.key, DER
#   client.pem/.key            client certificate (clientAuth), CN "tern test client"
#   expired.pem/.key           signed by ca, localhost names, valid 2020-01-01..2021-01-01
#   notyet.pem/.key            signed by ca, localhost names, valid 2090-01-01..2091-01-01
#   wronghost.pem/.key         signed by ca, DNS:wrong.example only
#   selfsigned.pem/.key        self-signed, localhost names
#   other-client.pem/.key      client certificate signed by other-ca, CN "tern other client"
#   alt.pem/.key               signed by ca, CN alt.test, DNS:alt.test (the SNI tests)
#   server-ec.sha256           SHA-256 of server-ec.pem's DER, lowercase hex, one line
#   ocsp-server.pem/.key/.resp a server certificate naming an OCSP responder, and a "good"
#                              OCSP response for it signed by ca
#   revoked-client.pem/.key    client certificate (CN "tern revoked client"), revoked
#   revoked-server.pem/.key    server certificate like ocsp-server.pem, revoked
#   crl.pem, crl.der           ca's CRL listing both revoked certificates (next update in
#                              ~10 years); crls/crl.pem the same, alone in a directory
#   revoked-server.resp        OCSP response for revoked-server.pem: revoked
#   ocsp-unknown.resp          OCSP response for ocsp-server.pem from a responder that does
#                              not know it: unknown
#   badsig.pem/.key            server-ec.pem with one bit of its signature flipped
#   notca-leaf.pem/.key        a server certificate signed by a certificate that is not a CA
#                              (CA:FALSE, signed by ca); the chain, leaf first, in the .pem
#
# Valid certificates run from 2024-01-01 to 2049-12-31 (fixed dates: only the keys are
# random). Idempotent: exits at once when OUTDIR/.stamp exists. Files appear atomically
# (built in a temporary directory, then moved), so a half-written set is never stamped.
#
# Usage: gen.sh OUTDIR
set -eu

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
out=$1
stamp="$out/.stamp"
[ -f "$stamp" ] && exit 0

command -v openssl >/dev/null 2>&1 || { echo "$0: openssl not found" >&2; exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d "$out/.gen.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
cd "$tmp"

START=20240101000000Z
END=20491231235959Z
PASS=tern-test

# One config for every step, so the system's openssl.cnf plays no part.
cat >openssl.cnf <<'EOF'
[ req ]
distinguished_name = req_dn
prompt             = no
[ req_dn ]
CN = unused

[ ca ]
default_ca = test_ca
[ test_ca ]
dir              = .
database         = ./index.txt
new_certs_dir    = ./newcerts
serial           = ./serial
default_md       = sha256
policy           = policy_any
unique_subject   = no
email_in_dn      = no
copy_extensions  = none
[ policy_any ]
commonName       = supplied
organizationName = optional

[ v3_ca ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
[ v3_server ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
subjectAltName         = DNS:localhost, IP:127.0.0.1
[ v3_ocsp ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
subjectAltName         = DNS:localhost, IP:127.0.0.1
authorityInfoAccess    = OCSP;URI:http://127.0.0.1:9/ocsp
[ v3_notca ]
basicConstraints       = critical, CA:FALSE
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
[ v3_wronghost ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
subjectAltName         = DNS:wrong.example
[ v3_alt ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
subjectAltName         = DNS:alt.test
[ v3_client ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
[ v3_selfsigned ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
subjectAltName         = DNS:localhost, IP:127.0.0.1
EOF
export OPENSSL_CONF="$tmp/openssl.cnf"
mkdir newcerts
: >index.txt
echo 1000 >serial

rsa_key() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }
ec_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -pkeyopt ec_param_enc:named_curve -out "$1" 2>/dev/null
}

# openssl ca chatters on stderr ("Using configuration from..."): show it only on failure.
run_ca() { openssl ca "$@" 2>ca.log || { cat ca.log >&2; return 1; }; }

# make_ca NAME CN: a self-signed CA via `openssl ca -selfsign`, so its dates are fixed too.
make_ca() {
    ec_key "$1.key"
    openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
    run_ca -batch -notext -selfsign -keyfile "$1.key" -in "$1.csr" -out "$1.pem" \
        -startdate "$START" -enddate "$END" -extensions v3_ca -extfile openssl.cnf \
        -config openssl.cnf
}

# sign NAME CN EXTENSIONS START END: NAME.csr from NAME.key, signed by ca.
sign() {
    openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
    run_ca -batch -notext -cert ca.pem -keyfile ca.key -in "$1.csr" -out "$1.pem" \
        -startdate "$4" -enddate "$5" -extensions "$3" -extfile openssl.cnf \
        -config openssl.cnf
}

make_ca ca "tern test CA"
make_ca other-ca "tern unrelated CA"

rsa_key server-rsa.key
sign server-rsa localhost v3_server "$START" "$END"
cat ca.pem >>server-rsa.pem          # the chain, leaf first
openssl pkey -in server-rsa.key -aes256 -passout "pass:$PASS" -out server-rsa-enc.key
openssl rsa -in server-rsa.key -aes256 -passout "pass:$PASS" -traditional \
    -out server-rsa-enc-trad.key 2>/dev/null

ec_key server-ec.key
sign server-ec localhost v3_server "$START" "$END"
openssl x509 -in server-ec.pem -outform DER -out server-ec.der
openssl pkey -in server-ec.key -outform DER -out server-ec.key.der
openssl dgst -sha256 -r server-ec.der | cut -d' ' -f1 >server-ec.sha256

ec_key client.key
sign client "tern test client" v3_client "$START" "$END"

ec_key expired.key
sign expired localhost v3_server 20200101000000Z 20210101000000Z
ec_key notyet.key
sign notyet localhost v3_server 20900101000000Z 20910101000000Z
ec_key wronghost.key
sign wronghost wrong.example v3_wronghost "$START" "$END"
ec_key other-client.key
openssl req -new -key other-client.key -subj "/CN=tern other client" -out other-client.csr
run_ca -batch -notext -cert other-ca.pem -keyfile other-ca.key -in other-client.csr \
    -out other-client.pem -startdate "$START" -enddate "$END" -extensions v3_client \
    -extfile openssl.cnf -config openssl.cnf
ec_key alt.key
sign alt alt.test v3_alt "$START" "$END"

# A server certificate naming an OCSP responder (as public CAs' do), and a signed OCSP
# response for it (good, next update in ~10 years) for the stapling tests.
ec_key ocsp-server.key
sign ocsp-server localhost v3_ocsp "$START" "$END"
openssl ocsp -issuer ca.pem -cert ocsp-server.pem -no_nonce -reqout ocsp-req.der 2>/dev/null
openssl ocsp -index index.txt -rsigner ca.pem -rkey ca.key -CA ca.pem -reqin ocsp-req.der \
    -respout ocsp-server.resp -ndays 3650 >/dev/null 2>&1

# Revocation: two certificates revoked with `openssl ca -revoke`, the CRL that lists them
# (`openssl ca -gencrl`), an OCSP response saying "revoked" and one saying "unknown" (a
# responder whose index is empty).
ec_key revoked-client.key
sign revoked-client "tern revoked client" v3_client "$START" "$END"
ec_key revoked-server.key
sign revoked-server localhost v3_ocsp "$START" "$END"
run_ca -revoke revoked-client.pem -keyfile ca.key -cert ca.pem -config openssl.cnf
run_ca -revoke revoked-server.pem -keyfile ca.key -cert ca.pem -config openssl.cnf
run_ca -gencrl -crldays 3650 -keyfile ca.key -cert ca.pem -out crl.pem -config openssl.cnf
openssl crl -in crl.pem -outform DER -out crl.der
mkdir crls
cp crl.pem crls/crl.pem
openssl ocsp -issuer ca.pem -cert revoked-server.pem -no_nonce -reqout revoked-req.der 2>/dev/null
openssl ocsp -index index.txt -rsigner ca.pem -rkey ca.key -CA ca.pem -reqin revoked-req.der \
    -respout revoked-server.resp -ndays 3650 >/dev/null 2>&1
: >empty-index.txt
openssl ocsp -index empty-index.txt -rsigner ca.pem -rkey ca.key -CA ca.pem \
    -reqin ocsp-req.der -respout ocsp-unknown.resp -ndays 3650 >/dev/null 2>&1

# A signature that does not verify: server-ec.pem's DER with the last bit of its
# signature (the last byte of the certificate) flipped.
openssl x509 -in server-ec.pem -outform DER -out badsig.der
n=$(wc -c <badsig.der)
last=$(tail -c 1 badsig.der | od -An -tu1 | tr -d ' ')
head -c $((n - 1)) badsig.der >badsig.flip
# shellcheck disable=SC2059
printf "\\$(printf '%03o' $((last ^ 1)))" >>badsig.flip
openssl x509 -inform DER -in badsig.flip -out badsig.pem
cp server-ec.key badsig.key

# An issuer that may not issue: notca (CA:FALSE) signs notca-leaf; the chain goes with it.
ec_key notca.key
sign notca "tern not a CA" v3_notca "$START" "$END"
ec_key notca-leaf.key
openssl req -new -key notca-leaf.key -subj "/CN=localhost" -out notca-leaf.csr
run_ca -batch -notext -cert notca.pem -keyfile notca.key -in notca-leaf.csr \
    -out notca-leaf.pem -startdate "$START" -enddate "$END" -extensions v3_server \
    -extfile openssl.cnf -config openssl.cnf
cat notca.pem >>notca-leaf.pem

ec_key selfsigned.key
openssl req -new -key selfsigned.key -subj "/CN=localhost" -out selfsigned.csr
run_ca -batch -notext -selfsign -keyfile selfsigned.key -in selfsigned.csr \
    -out selfsigned.pem -startdate "$START" -enddate "$END" -extensions v3_selfsigned \
    -extfile openssl.cnf -config openssl.cnf

# Sanity: what must verify does, what must not does not.
openssl verify -CAfile ca.pem server-ec.pem client.pem wronghost.pem alt.pem >/dev/null
openssl verify -CAfile ca.pem -untrusted server-rsa.pem server-rsa.pem >/dev/null
if openssl verify -CAfile ca.pem expired.pem >/dev/null 2>&1 ||
    openssl verify -CAfile ca.pem notyet.pem >/dev/null 2>&1 ||
    openssl verify -CAfile ca.pem selfsigned.pem >/dev/null 2>&1 ||
    openssl verify -CAfile other-ca.pem server-ec.pem >/dev/null 2>&1 ||
    openssl verify -CAfile ca.pem other-client.pem >/dev/null 2>&1 ||
    openssl verify -CAfile ca.pem badsig.pem >/dev/null 2>&1 ||
    openssl verify -CAfile ca.pem -untrusted notca-leaf.pem notca-leaf.pem >/dev/null 2>&1 ||
    openssl verify -crl_check -CRLfile crl.pem -CAfile ca.pem revoked-client.pem >/dev/null 2>&1 ||
    openssl verify -crl_check -CRLfile crl.pem -CAfile ca.pem revoked-server.pem >/dev/null 2>&1 ||
    ! openssl verify -crl_check -CRLfile crl.pem -CAfile ca.pem client.pem >/dev/null 2>&1 ||
    ! openssl ocsp -respin revoked-server.resp -CAfile ca.pem -issuer ca.pem \
        -cert revoked-server.pem 2>/dev/null | grep -q ': revoked' ||
    ! openssl ocsp -respin ocsp-unknown.resp -CAfile ca.pem -issuer ca.pem \
        -cert ocsp-server.pem 2>/dev/null | grep -q ': unknown'; then
    echo "$0: a certificate or OCSP response is not what it must be" >&2
    exit 1
fi

files="ca.pem ca.key other-ca.pem other-ca.key server-rsa.pem server-rsa.key
       server-rsa-enc.key server-rsa-enc-trad.key server-ec.pem server-ec.key server-ec.der
       server-ec.key.der client.pem client.key expired.pem expired.key notyet.pem notyet.key
       wronghost.pem wronghost.key selfsigned.pem selfsigned.key alt.pem alt.key
       other-client.pem other-client.key server-ec.sha256 ocsp-server.pem ocsp-server.key
       ocsp-server.resp revoked-client.pem revoked-client.key revoked-server.pem
       revoked-server.key crl.pem crl.der revoked-server.resp ocsp-unknown.resp badsig.pem
       badsig.key notca-leaf.pem notca-leaf.key"
for f in $files; do
    chmod 0644 "$f"
    mv -f "$f" "$out/$f"
done
mkdir -p "$out/crls"
chmod 0644 crls/crl.pem
mv -f crls/crl.pem "$out/crls/crl.pem"
date -u +%Y-%m-%dT%H:%M:%SZ >"$out/.stamp"
