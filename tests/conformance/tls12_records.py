# SPDX-License-Identifier: MIT
"""Conformance: TLS 1.2 renegotiation and ChangeCipherSpec records at tern-echo (RFC 5246,
RFC 5746), with tls_peer.Tls12Client (ECDHE, AES-128-GCM):
  - a renegotiation attempt (a ClientHello, encrypted, after the handshake, with the
    renegotiation_info of RFC 5746) gets a no_renegotiation warning and the connection goes
    on: data sent afterwards is echoed (RFC 5246 section 7.2.2); a second attempt likewise;
  - a ChangeCipherSpec of two bytes, of value 2, or empty, in place of the client's:
    decode_error (section 7.1: the message is the single byte 1; 6.2.1: no empty records
    but application data);
  - a ChangeCipherSpec after the handshake (protected, as every record then is):
    unexpected_message;
  - a record over 2^14 + 2048 bytes (section 6.2.3) or a plaintext over 2^14 bytes:
    record_overflow.
Each case asserts the exact alert and level, the data echoed, the close, and that
tern-echo's log line names the alert it sent. With TERN_GATEWAY, the renegotiation and CCS
cases run again against tern-gateway with PSK-AES128-GCM-SHA256 (the devices' suite), in
front of a plaintext tern-echo.

Usage: tls12_records.py TERN_ECHO CERTS_DIR [TERN_GATEWAY]   (exit 0 pass, 77 skip, 1 fail)
"""

import os
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    from tls_peer import (APPLICATION_DATA, CHANGE_CIPHER_SPEC, HANDSHAKE, PeerError,
                          TernServer, Tls12Client, record, run_cases)
except ImportError as e:  # no python3-cryptography
    print("SKIP: %s (Debian: python3-cryptography)" % e)
    sys.exit(77)

UNEXPECTED_MESSAGE, RECORD_OVERFLOW, DECODE_ERROR, NO_RENEGOTIATION = 10, 22, 50, 100
WARNING = 1
MAX = 1 << 14


PSK = None  # (identity, key) for the gateway's cases


def client(port):
    return Tls12Client(port, psk=PSK)


def before_ccs(port):
    c = client(port)
    if not c.handshake():
        raise PeerError("handshake refused: %s" % c.out)
    return c


def connected(port):
    c = client(port)
    c.connect()
    return c


def echo(port):
    c = connected(port)
    c.send_protected(APPLICATION_DATA, b"ping")
    return c


def renegotiation(port):
    c = connected(port)
    c.send_protected(HANDSHAKE, c.renegotiation_hello())
    c.send_protected(APPLICATION_DATA, b"still here")
    return c


def renegotiation_twice(port):
    c = connected(port)
    c.send_protected(HANDSHAKE, c.renegotiation_hello())
    c.send_protected(APPLICATION_DATA, b"one ")
    c.send_protected(HANDSHAKE, c.renegotiation_hello())
    c.send_protected(APPLICATION_DATA, b"two")
    return c


def ccs_two_bytes(port):
    c = before_ccs(port)
    c.send_raw(record(CHANGE_CIPHER_SPEC, b"\x01\x01"))
    return c


def ccs_value_2(port):
    c = before_ccs(port)
    c.send_raw(record(CHANGE_CIPHER_SPEC, b"\x02"))
    return c


def ccs_empty(port):
    c = before_ccs(port)
    c.send_raw(record(CHANGE_CIPHER_SPEC, b""))
    return c


def ccs_after_handshake(port):
    c = connected(port)
    c.send_protected(CHANGE_CIPHER_SPEC, b"\x01")
    return c


def ciphertext_over_limit(port):
    c = connected(port)
    c.send_raw(record(APPLICATION_DATA, os.urandom(MAX + 2048 + 1)))
    return c


def plaintext_over_limit(port):
    c = connected(port)
    c.send_protected(APPLICATION_DATA, bytes(MAX + 1))
    return c


CASES = [
    ("echo (control)", echo, None, b"ping", False, None),
    ("renegotiation: no_renegotiation warning, data goes on", renegotiation,
     (WARNING, NO_RENEGOTIATION), b"still here", False, None),
    ("two renegotiation attempts", renegotiation_twice, (WARNING, NO_RENEGOTIATION),
     b"one two", False, None),
    ("ChangeCipherSpec of two bytes", ccs_two_bytes, DECODE_ERROR, b"", True,
     "sent alert decode_error"),
    ("ChangeCipherSpec of value 2", ccs_value_2, DECODE_ERROR, b"", True,
     "sent alert decode_error"),
    ("empty ChangeCipherSpec", ccs_empty, DECODE_ERROR, b"", True, "sent alert decode_error"),
    ("ChangeCipherSpec after the handshake", ccs_after_handshake, UNEXPECTED_MESSAGE, b"",
     True, "sent alert unexpected_message"),
    ("record over 2^14 + 2048 bytes", ciphertext_over_limit, RECORD_OVERFLOW, b"", True,
     "sent alert record_overflow"),
    ("plaintext over 2^14 bytes", plaintext_over_limit, RECORD_OVERFLOW, b"", True,
     "sent alert record_overflow"),
]


# The size limits are wolfSSL's record layer alone: once is enough.
GATEWAY_CASES = [c for c in CASES if c[1] not in (ciphertext_over_limit, plaintext_over_limit)]


def run_gateway(gw_bin, echo_bin, work):
    """The cases against tern-gateway (PSK) in front of a plaintext tern-echo."""
    global PSK
    PSK = (b"conf-dev", bytes(range(32)))
    ids = os.path.join(work, "ids.psk")
    with open(os.open(ids, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write("%s:%s\n" % (PSK[0].decode(), PSK[1].hex()))
    backend = TernServer([echo_bin, "--plain"], os.path.join(work, "backend.log"))
    try:
        gw = TernServer([gw_bin, "--psk-file", ids, "--backend", "127.0.0.1:%d" % backend.port],
                        os.path.join(work, "gateway.log"))
        try:
            print("-- tern-gateway, PSK-AES128-GCM-SHA256")
            failures = run_cases(GATEWAY_CASES, gw)
            if not gw.alive():
                print("FAIL: tern-gateway died")
                failures += 1
        finally:
            gw.stop()
    finally:
        backend.stop()
    return failures


def main():
    if len(sys.argv) not in (3, 4):
        print("usage: %s TERN_ECHO CERTS_DIR [TERN_GATEWAY]" % sys.argv[0], file=sys.stderr)
        return 2
    echo_bin, certs = sys.argv[1], sys.argv[2]
    gw_bin = sys.argv[3] if len(sys.argv) == 4 else None
    if not os.path.isfile(os.path.join(certs, "server-rsa.pem")):
        print("SKIP: no test certificates in %s" % certs)
        return 77
    with tempfile.TemporaryDirectory(prefix="tern-conf12.") as work:
        server = TernServer([echo_bin, "--cert", os.path.join(certs, "server-rsa.pem"),
                             "--key", os.path.join(certs, "server-rsa.key")],
                            os.path.join(work, "server.log"))
        try:
            print("-- tern-echo, ECDHE-RSA-AES128-GCM-SHA256")
            failures = run_cases(CASES, server)
            if not server.alive():
                print("FAIL: tern-echo died")
                failures += 1
        finally:
            server.stop()
        if gw_bin is not None:
            failures += run_gateway(gw_bin, echo_bin, work)
    print("PASS" if failures == 0 else "%d case(s) failed" % failures)
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
