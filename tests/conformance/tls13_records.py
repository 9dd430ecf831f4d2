# SPDX-License-Identifier: MIT
"""Conformance: the TLS 1.3 record layer of tern-echo, in the encrypted phase (RFC 8446).

Each case completes a real handshake with tls_peer.Tls13Client (or stops just before the
client's Finished), sends crafted records, and asserts the exact alert, that nothing was
answered (no echo), that the connection closed, and that tern-echo's log line names the
alert. Refusals:
  - an inner plaintext of all zeros (no content type), in place of the client's Finished,
    after the handshake, and behind application data in the same write (which must not be
    echoed): unexpected_message (section 5.4);
  - a ChangeCipherSpec that is not the single compatibility one (a second one, value 2, two
    bytes, none, a protected one, one after the handshake): unexpected_message (section 5);
  - an empty alert record (only application data may be empty, section 5.1): decode_error;
  - a plaintext alert from a client that has not sent an encrypted record yet (it could not
    go on after the ServerHello): a close, no alert back (sections 5, 6); after the handshake
    an unprotected alert is an unexpected record: unexpected_message;
  - an error alert of level "warning" is fatal all the same (section 6.2): a close, and the
    log names the alert received;
  - a KeyUpdate of 0 or 2 bytes: decode_error; with request value 2: illegal_parameter
    (section 4.6.3);
  - a record longer than 2^14 + 256 bytes (section 5.2), or an inner plaintext (content,
    type and padding) over 2^14 + 1 bytes (section 5.4): record_overflow.
Controls: the echo works; a KeyUpdate is followed; the largest legal records are accepted.

Usage: tls13_records.py TERN_ECHO CERTS_DIR   (exit 0 pass, 77 skip, 1 fail)
"""

import os
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    from tls_peer import (ALERT, APPLICATION_DATA, CHANGE_CIPHER_SPEC, PeerError, TernServer,
                          Tls13Client, alert_name, record, run_cases)
except ImportError as e:  # no python3-cryptography
    print("SKIP: %s (Debian: python3-cryptography)" % e)
    sys.exit(77)

UNEXPECTED_MESSAGE, RECORD_OVERFLOW, ILLEGAL_PARAMETER, DECODE_ERROR = 10, 22, 47, 50
CCS = record(CHANGE_CIPHER_SPEC, b"\x01")
MAX = 1 << 14


def before_finished(port):
    c = Tls13Client(port)
    if not c.handshake():
        raise PeerError("handshake refused: %s" % c.out)
    return c


def connected(port):
    c = Tls13Client(port)
    c.connect()
    return c


# Each case: (name, function(port) -> client after sending, expected alert or None,
#             expected data, whether the connection must be closed, text the log must show)
def zero_inner_for_finished(port):
    c = before_finished(port)
    c.send_raw(CCS + c.seal_inner(bytes(8)))
    return c


def zero_inner_one_byte(port):
    c = before_finished(port)
    c.send_raw(CCS + c.seal_inner(b"\x00"))
    return c


def zero_inner_after_handshake(port):
    c = connected(port)
    c.send_raw(c.seal_inner(bytes(32)))
    return c


def zero_inner_behind_data(port):
    c = connected(port)
    c.send_raw(c.seal(b"ping", APPLICATION_DATA) + c.seal_inner(bytes(8)))
    return c


def second_ccs(port):
    c = before_finished(port)
    c.send_raw(CCS + CCS + c.finished_record())
    return c


def ccs_value_2(port):
    c = before_finished(port)
    c.send_raw(record(CHANGE_CIPHER_SPEC, b"\x02"))
    return c


def ccs_two_bytes(port):
    c = before_finished(port)
    c.send_raw(record(CHANGE_CIPHER_SPEC, b"\x01\x01"))
    return c


def ccs_empty(port):
    c = before_finished(port)
    c.send_raw(record(CHANGE_CIPHER_SPEC, b""))
    return c


def empty_alert_record(port):
    c = before_finished(port)
    c.send_raw(record(ALERT, b""))
    return c


def ccs_protected(port):
    c = before_finished(port)
    c.send_raw(CCS + c.seal(b"\x01", CHANGE_CIPHER_SPEC))
    return c


def ccs_after_handshake(port):
    c = connected(port)
    c.send_raw(CCS)
    return c


def plaintext_alert_after_server_hello(port):
    c = before_finished(port)
    c.send_raw(record(ALERT, b"\x02\x28"))  # fatal handshake_failure, unprotected
    return c


def plaintext_alert_after_handshake(port):
    c = connected(port)
    c.send_raw(record(ALERT, b"\x02\x28"))
    return c


def encrypted_alert(level):
    def case(port):
        c = connected(port)
        c.send_protected(bytes([level, 40]), ALERT)  # handshake_failure
        return c
    return case


def key_update_empty(port):
    c = connected(port)
    c.key_update(b"")
    return c


def key_update_two_bytes(port):
    c = connected(port)
    c.key_update(b"\x00\x00")
    return c


def key_update_bad_request(port):
    c = connected(port)
    c.key_update(b"\x02")
    return c


def ciphertext_over_limit(port):
    c = connected(port)
    c.send_raw(record(APPLICATION_DATA, os.urandom(MAX + 256 + 1)))
    return c


def plaintext_over_limit(port):
    c = connected(port)
    c.send_protected(bytes(MAX + 1), APPLICATION_DATA)
    return c


def plaintext_over_limit_by_padding(port):
    c = connected(port)
    c.send_protected(bytes(MAX), APPLICATION_DATA, padding=1)  # content + type = 2^14 + 1
    return c


def echo(port):
    c = connected(port)
    c.send_protected(b"ping", APPLICATION_DATA)
    return c


def key_update_followed(port):
    c = connected(port)
    c.key_update()
    c.send_protected(b"after key update", APPLICATION_DATA)
    return c


def largest_records(port):
    c = connected(port)
    # Section 5.4: the whole inner plaintext (content, type, padding) may be 2^14 + 1 bytes.
    c.send_protected(b"x" * MAX, APPLICATION_DATA)
    c.send_protected(b"y" * (MAX - 100), APPLICATION_DATA, padding=100)
    return c


def sent(alert):
    return "sent alert " + alert_name(alert)


CASES = [
    ("echo (control)", echo, None, b"ping", False, None),
    ("KeyUpdate is followed (control)", key_update_followed, None, b"after key update", False,
     None),
    ("largest legal records accepted (control)", largest_records, None,
     b"x" * MAX + b"y" * (MAX - 100), False, None),
    ("all-zero inner plaintext for the Finished", zero_inner_for_finished, UNEXPECTED_MESSAGE,
     b"", True, sent(UNEXPECTED_MESSAGE)),
    ("one-byte all-zero inner plaintext", zero_inner_one_byte, UNEXPECTED_MESSAGE, b"", True,
     sent(UNEXPECTED_MESSAGE)),
    ("all-zero inner plaintext after the handshake", zero_inner_after_handshake,
     UNEXPECTED_MESSAGE, b"", True, sent(UNEXPECTED_MESSAGE)),
    ("all-zero inner plaintext behind data: no echo", zero_inner_behind_data,
     UNEXPECTED_MESSAGE, b"", True, sent(UNEXPECTED_MESSAGE)),
    ("a second ChangeCipherSpec", second_ccs, UNEXPECTED_MESSAGE, b"", True,
     sent(UNEXPECTED_MESSAGE)),
    ("ChangeCipherSpec of value 2", ccs_value_2, UNEXPECTED_MESSAGE, b"", True,
     sent(UNEXPECTED_MESSAGE)),
    ("ChangeCipherSpec of two bytes", ccs_two_bytes, UNEXPECTED_MESSAGE, b"", True,
     sent(UNEXPECTED_MESSAGE)),
    ("empty ChangeCipherSpec", ccs_empty, UNEXPECTED_MESSAGE, b"", True,
     sent(UNEXPECTED_MESSAGE)),
    ("empty alert record", empty_alert_record, DECODE_ERROR, b"", True, sent(DECODE_ERROR)),
    ("protected ChangeCipherSpec", ccs_protected, UNEXPECTED_MESSAGE, b"", True,
     sent(UNEXPECTED_MESSAGE)),
    ("ChangeCipherSpec after the handshake", ccs_after_handshake, UNEXPECTED_MESSAGE, b"",
     True, sent(UNEXPECTED_MESSAGE)),
    ("plaintext alert after the ServerHello: a close", plaintext_alert_after_server_hello,
     None, b"", True, "received alert handshake_failure"),
    ("plaintext alert after the handshake", plaintext_alert_after_handshake,
     UNEXPECTED_MESSAGE, b"", True, sent(UNEXPECTED_MESSAGE)),
    ("fatal alert: a close (control)", encrypted_alert(2), None, b"", True,
     "received alert handshake_failure"),
    ("error alert of warning level: a close", encrypted_alert(1), None, b"", True,
     "received alert handshake_failure"),
    ("KeyUpdate of 0 bytes", key_update_empty, DECODE_ERROR, b"", True, sent(DECODE_ERROR)),
    ("KeyUpdate of 2 bytes", key_update_two_bytes, DECODE_ERROR, b"", True,
     sent(DECODE_ERROR)),
    ("KeyUpdate requesting 2", key_update_bad_request, ILLEGAL_PARAMETER, b"", True,
     sent(ILLEGAL_PARAMETER)),
    ("record over 2^14 + 256 bytes", ciphertext_over_limit, RECORD_OVERFLOW, b"", True,
     sent(RECORD_OVERFLOW)),
    ("inner plaintext over 2^14 + 1 bytes", plaintext_over_limit, RECORD_OVERFLOW, b"", True,
     sent(RECORD_OVERFLOW)),
    ("inner plaintext over 2^14 + 1 bytes by padding", plaintext_over_limit_by_padding,
     RECORD_OVERFLOW, b"", True, sent(RECORD_OVERFLOW)),
]


def main():
    if len(sys.argv) != 3:
        print("usage: %s TERN_ECHO CERTS_DIR" % sys.argv[0], file=sys.stderr)
        return 2
    echo_bin, certs = sys.argv[1], sys.argv[2]
    if not os.path.isfile(os.path.join(certs, "server-rsa.pem")):
        print("SKIP: no test certificates in %s" % certs)
        return 77
    with tempfile.TemporaryDirectory(prefix="tern-conf13.") as work:
        server = TernServer([echo_bin, "--cert", os.path.join(certs, "server-rsa.pem"),
                             "--key", os.path.join(certs, "server-rsa.key")],
                            os.path.join(work, "server.log"))
        try:
            failures = run_cases(CASES, server)
            if not server.alive():
                print("FAIL: tern-echo died")
                failures += 1
        finally:
            server.stop()
    print("PASS" if failures == 0 else "%d case(s) failed" % failures)
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
