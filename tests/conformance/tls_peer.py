# SPDX-License-Identifier: MIT
"""A TLS client for conformance tests: it completes real TLS 1.3 and TLS 1.2 handshakes and
can then send any record, well-formed or not, encrypted with the connection's keys.

What it speaks (enough to reach the encrypted phase of tern's servers, nothing more):
  - TLS 1.3 (RFC 8446): TLS_AES_128_GCM_SHA256, X25519 key share; the key schedule of
    section 7.1, record protection of section 5.2 with the nonce of section 5.3, KeyUpdate
    (section 4.6.3). The server's Finished is checked; its certificate is not (any is
    accepted: the tests are about records, not trust).
  - TLS 1.2 (RFC 5246, RFC 8422): ECDHE-RSA/ECDSA-AES128-GCM-SHA256 over X25519 or P-256,
    or PSK-AES128-GCM-SHA256 (RFC 4279, RFC 5487); the PRF of RFC 5246 section 5, AES-GCM
    records of RFC 5288, renegotiation_info (RFC 5746).

After a case has sent its records, `outcome()` reads what the server answers until it
closes or falls silent: the first alert (level, description), the application data that
came back, and whether the connection ended (EOF or reset).

Run it with a Python that has the `cryptography` package (Debian: python3-cryptography).
"""

import hashlib
import hmac
import os
import socket
import struct
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.exceptions import InvalidTag

# Record content types (RFC 8446 section 5.1).
CHANGE_CIPHER_SPEC = 20
ALERT = 21
HANDSHAKE = 22
APPLICATION_DATA = 23

# Handshake message types.
CLIENT_HELLO = 1
SERVER_HELLO = 2
NEW_SESSION_TICKET = 4
ENCRYPTED_EXTENSIONS = 8
CERTIFICATE = 11
SERVER_KEY_EXCHANGE = 12
CERTIFICATE_REQUEST = 13
SERVER_HELLO_DONE = 14
CERTIFICATE_VERIFY = 15
CLIENT_KEY_EXCHANGE = 16
FINISHED = 20
KEY_UPDATE = 24

ALERT_NAMES = {
    0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow",
    40: "handshake_failure", 42: "bad_certificate", 47: "illegal_parameter", 50: "decode_error",
    51: "decrypt_error", 70: "protocol_version", 80: "internal_error", 90: "user_canceled",
    100: "no_renegotiation", 109: "missing_extension", 110: "unsupported_extension",
}

HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

# Signature schemes a client may list; the server's signature is not checked.
SIG_ALGS = [0x0403, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0503, 0x0807]


class PeerError(Exception):
    """The server did something this client cannot follow (not a test verdict)."""


def alert_name(desc):
    return ALERT_NAMES.get(desc, str(desc))


def u8(n):
    return struct.pack("!B", n)


def u16(n):
    return struct.pack("!H", n)


def u24(n):
    return struct.pack("!I", n)[1:]


def vec8(b):
    return u8(len(b)) + b


def vec16(b):
    return u16(len(b)) + b


def ext(kind, body):
    return u16(kind) + vec16(body)


def handshake_msg(kind, body):
    return u8(kind) + u24(len(body)) + body


def record(kind, payload, version=0x0303):
    return u8(kind) + u16(version) + u16(len(payload)) + payload


# ---- key derivation ---------------------------------------------------------------------------

def hkdf_extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_expand(prk, info, length):
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + u8(i), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def hkdf_expand_label(secret, label, context, length):
    """RFC 8446 section 7.1: HKDF-Expand-Label."""
    full = b"tls13 " + label
    return hkdf_expand(secret, u16(length) + vec8(full) + vec8(context), length)


def derive_secret(secret, label, transcript):
    return hkdf_expand_label(secret, label, hashlib.sha256(transcript).digest(), 32)


def prf12(secret, label, seed, length):
    """RFC 5246 section 5: P_SHA256(secret, label + seed)."""
    seed = label + seed
    out, a = b"", seed
    while len(out) < length:
        a = hmac.new(secret, a, hashlib.sha256).digest()
        out += hmac.new(secret, a + seed, hashlib.sha256).digest()
    return out[:length]


class Protection13:
    """One direction of TLS 1.3 record protection (AES-128-GCM, RFC 8446 section 5.2)."""

    def __init__(self, secret):
        self.secret = secret
        self.aead = AESGCM(hkdf_expand_label(secret, b"key", b"", 16))
        self.iv = hkdf_expand_label(secret, b"iv", b"", 12)
        self.seq = 0

    def nonce(self):
        seq = self.seq.to_bytes(12, "big")
        self.seq += 1
        return bytes(a ^ b for a, b in zip(self.iv, seq))

    def seal(self, inner):
        header = u8(APPLICATION_DATA) + u16(0x0303) + u16(len(inner) + 16)
        return header + self.aead.encrypt(self.nonce(), inner, header)

    def open(self, header, body):
        """Returns the inner plaintext; raises InvalidTag (the sequence number then stays)."""
        seq = self.seq
        try:
            return self.aead.decrypt(self.nonce(), body, header)
        except InvalidTag:
            self.seq = seq
            raise

    def updated(self):
        """RFC 8446 section 7.2: the next generation of this traffic secret."""
        return Protection13(hkdf_expand_label(self.secret, b"traffic upd", b"", 32))


class Protection12:
    """One direction of TLS 1.2 AES-GCM records (RFC 5288): explicit nonce = sequence."""

    def __init__(self, key, salt):
        self.aead = AESGCM(key)
        self.salt = salt
        self.seq = 0

    def seal(self, kind, payload):
        explicit = self.seq.to_bytes(8, "big")
        aad = explicit + u8(kind) + u16(0x0303) + u16(len(payload))
        self.seq += 1
        body = explicit + self.aead.encrypt(self.salt + explicit, payload, aad)
        return record(kind, body)

    def open(self, kind, body):
        if len(body) < 24:
            raise InvalidTag()
        explicit, sealed = body[:8], body[8:]
        aad = self.seq.to_bytes(8, "big") + u8(kind) + u16(0x0303) + u16(len(sealed) - 16)
        out = self.aead.decrypt(self.salt + explicit, sealed, aad)
        self.seq += 1
        return out


# ---- the outcome of a case ----------------------------------------------------------------------

class Outcome:
    """What the server did after the case's records: its first alert, echoed data, the end."""

    def __init__(self):
        self.alerts = []         # (level, description) in order
        self.data = b""          # application data received
        self.closed = False      # EOF or reset seen
        self.reset = False
        self.undecryptable = 0   # protected records no known key opened

    @property
    def alert(self):
        return self.alerts[0] if self.alerts else None

    def __str__(self):
        alerts = ", ".join("%s(%d) level %d" % (alert_name(d), d, lv) for lv, d in self.alerts)
        return "alerts [%s], data %r, %s%s" % (
            alerts or "none", self.data[:64],
            "reset" if self.reset else ("EOF" if self.closed else "still open"),
            ", %d undecryptable records" % self.undecryptable if self.undecryptable else "")


class Conn:
    """A TCP connection with a record reader."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False
        self.reset = False

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout()
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
            self.reset = True
        if not chunk:
            self.eof = True
        self.buf += chunk

    def read_record(self, timeout=5.0):
        """(type, header, body), or None at EOF; raises socket.timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 5:
                n = struct.unpack("!H", self.buf[3:5])[0]
                if len(self.buf) >= 5 + n:
                    header, body = self.buf[:5], self.buf[5:5 + n]
                    self.buf = self.buf[5 + n:]
                    return header[0], header, body
            if self.eof:
                return None
            self._fill(deadline)


class HandshakeReader:
    """Splits handshake messages out of record payloads (they may span records)."""

    def __init__(self):
        self.buf = b""

    def feed(self, data):
        self.buf += data

    def next(self):
        if len(self.buf) < 4:
            return None
        n = int.from_bytes(self.buf[1:4], "big")
        if len(self.buf) < 4 + n:
            return None
        msg, self.buf = self.buf[:4 + n], self.buf[4 + n:]
        return msg


def parse_extensions(data):
    out = {}
    while data:
        kind, n = struct.unpack("!HH", data[:4])
        out[kind] = data[4:4 + n]
        data = data[4 + n:]
    return out


def parse_server_hello(body):
    """(random, session_id, suite, extensions) of a ServerHello body."""
    random = body[2:34]
    sid_len = body[34]
    sid = body[35:35 + sid_len]
    i = 35 + sid_len
    suite = struct.unpack("!H", body[i:i + 2])[0]
    i += 3  # suite, compression method
    exts = {}
    if i + 2 <= len(body):
        n = struct.unpack("!H", body[i:i + 2])[0]
        exts = parse_extensions(body[i + 2:i + 2 + n])
    return random, sid, suite, exts


# ---- TLS 1.3 ----------------------------------------------------------------------------------

class Tls13Client:
    """A TLS 1.3 client whose handshake stops before its Finished, so a case can replace it."""

    def __init__(self, port, server_name="localhost"):
        self.conn = Conn(port)
        self.server_name = server_name
        self.write = None          # Protection13 for what we send
        self.reads = []            # Protection13 keys that may open the server's records
        self.transcript = b""
        self.out = Outcome()

    # -- sending
    def send_raw(self, data):
        self.conn.send(data)

    def send_plain(self, kind, payload):
        self.conn.send(record(kind, payload))

    def seal(self, content, kind, padding=0):
        """A protected record: content || type || zeros (RFC 8446 section 5.2)."""
        return self.write.seal(content + u8(kind) + bytes(padding))

    def seal_inner(self, inner):
        """A protected record of exactly this inner plaintext (type byte included or not)."""
        return self.write.seal(inner)

    def send_protected(self, content, kind, padding=0):
        self.conn.send(self.seal(content, kind, padding))

    # -- the handshake
    def client_hello(self):
        self.key = x25519.X25519PrivateKey.generate()
        pub = self.key.public_key().public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw)
        name = self.server_name.encode()
        exts = b"".join([
            ext(0x0000, vec16(u8(0) + vec16(name))),                  # server_name
            ext(0x000a, vec16(u16(0x001d))),                          # supported_groups
            ext(0x000d, vec16(b"".join(u16(a) for a in SIG_ALGS))),   # signature_algorithms
            ext(0x002b, vec8(u16(0x0304))),                           # supported_versions
            ext(0x002d, vec8(u8(1))),                                 # psk_key_exchange_modes
            ext(0x0033, vec16(u16(0x001d) + vec16(pub))),             # key_share
        ])
        body = (u16(0x0303) + os.urandom(32) + vec8(os.urandom(32)) + vec16(u16(0x1301)) +
                vec8(u8(0)) + vec16(exts))
        return handshake_msg(CLIENT_HELLO, body)

    def handshake(self, timeout=5.0):
        """Runs the handshake up to the server's Finished. Returns False (with self.out set)
        if the server refused; the client's Finished is not sent (see finish())."""
        ch = self.client_hello()
        self.transcript = ch
        self.conn.send(record(HANDSHAKE, ch, 0x0301))
        hs = HandshakeReader()
        while True:  # ServerHello, in plaintext
            rec = self.conn.read_record(timeout)
            if rec is None:
                self.out.closed = True
                return False
            kind, _, body = rec
            if kind == ALERT:
                self.out.alerts.append((body[0], body[1]))
                return False
            if kind != HANDSHAKE:
                raise PeerError("record type %d before ServerHello" % kind)
            hs.feed(body)
            sh = hs.next()
            if sh is not None:
                break
        if sh[0] != SERVER_HELLO:
            raise PeerError("handshake type %d instead of ServerHello" % sh[0])
        random, _, suite, exts = parse_server_hello(sh[4:])
        if random == HRR_RANDOM:
            raise PeerError("HelloRetryRequest (this client offers X25519 only)")
        if suite != 0x1301 or 0x0033 not in exts:
            raise PeerError("unexpected suite %04x or no key_share" % suite)
        share = exts[0x0033]
        peer = x25519.X25519PublicKey.from_public_bytes(share[4:4 + 32])
        shared = self.key.exchange(peer)
        self.transcript += sh

        early = hkdf_extract(bytes(32), bytes(32))
        hs_secret = hkdf_extract(derive_secret(early, b"derived", b""), shared)
        self.c_hs = Protection13(derive_secret(hs_secret, b"c hs traffic", self.transcript))
        self.s_hs = Protection13(derive_secret(hs_secret, b"s hs traffic", self.transcript))
        master = hkdf_extract(derive_secret(hs_secret, b"derived", b""), bytes(32))
        self.write = self.c_hs
        self.reads = [self.s_hs]

        hs = HandshakeReader()
        while True:  # EncryptedExtensions .. Finished, protected
            rec = self.conn.read_record(timeout)
            if rec is None:
                self.out.closed = True
                return False
            kind, header, body = rec
            if kind == CHANGE_CIPHER_SPEC:
                continue  # RFC 8446 appendix D.4: middlebox compatibility
            if kind == ALERT:
                self.out.alerts.append((body[0], body[1]))
                return False
            inner = self.s_hs.open(header, body)
            content, ctype = strip_inner(inner)
            if ctype == ALERT:
                self.out.alerts.append((content[0], content[1]))
                return False
            if ctype != HANDSHAKE:
                raise PeerError("inner type %d during the handshake" % ctype)
            hs.feed(content)
            done = False
            while True:
                msg = hs.next()
                if msg is None:
                    break
                if msg[0] == FINISHED:
                    key = hkdf_expand_label(self.s_hs.secret, b"finished", b"", 32)
                    want = hmac.new(key, hashlib.sha256(self.transcript).digest(),
                                    hashlib.sha256).digest()
                    if not hmac.compare_digest(want, msg[4:]):
                        raise PeerError("the server's Finished does not verify")
                    self.transcript += msg
                    done = True
                    break
                self.transcript += msg
            if done:
                break
        self.c_ap = Protection13(derive_secret(master, b"c ap traffic", self.transcript))
        self.s_ap = Protection13(derive_secret(master, b"s ap traffic", self.transcript))
        self.reads = [self.s_ap, self.s_hs]
        return True

    def finished_record(self):
        """The client's Finished, protected with the client handshake key."""
        key = hkdf_expand_label(self.c_hs.secret, b"finished", b"", 32)
        verify = hmac.new(key, hashlib.sha256(self.transcript).digest(), hashlib.sha256).digest()
        return self.seal(handshake_msg(FINISHED, verify), HANDSHAKE)

    def finish(self, ccs=True):
        """Sends (a compatibility CCS and) the client's Finished; later records use c_ap."""
        data = record(CHANGE_CIPHER_SPEC, b"\x01") if ccs else b""
        self.conn.send(data + self.finished_record())
        self.write = self.c_ap

    def connect(self):
        """The whole handshake; raises PeerError if the server refuses."""
        if not self.handshake():
            raise PeerError("handshake refused: %s" % self.out)
        self.finish()

    def key_update(self, body=b"\x00"):
        """A KeyUpdate (update_not_requested by default) under the current key; later
        records use the next key when the body is the well-formed one."""
        self.send_protected(handshake_msg(KEY_UPDATE, body), HANDSHAKE)
        if len(body) == 1:
            self.write = self.write.updated()

    # -- reading the answer
    def outcome(self, timeout=2.0):
        """Reads until the server closes or is silent for `timeout` seconds."""
        out = self.out
        hs = HandshakeReader()
        while True:
            try:
                rec = self.conn.read_record(timeout)
            except socket.timeout:
                break
            if rec is None:
                out.closed = True
                out.reset = self.conn.reset
                break
            kind, header, body = rec
            if kind == ALERT:  # a plaintext alert
                out.alerts.append((body[0], body[1]) if len(body) >= 2 else (-1, -1))
                continue
            if kind != APPLICATION_DATA:
                continue
            inner = None
            for key in self.reads:
                try:
                    inner = key.open(header, body)
                    break
                except InvalidTag:
                    continue
            if inner is None:
                out.undecryptable += 1
                continue
            content, ctype = strip_inner(inner)
            if ctype == ALERT:
                out.alerts.append((content[0], content[1]))
            elif ctype == APPLICATION_DATA:
                out.data += content
            elif ctype == HANDSHAKE:
                hs.feed(content)
                while True:
                    msg = hs.next()
                    if msg is None:
                        break
                    if msg[0] == KEY_UPDATE and self.reads:
                        self.reads[0] = self.reads[0].updated()
        return out

    def close(self):
        self.conn.close()


def strip_inner(inner):
    """RFC 8446 section 5.4: (content, type); type 0 when the plaintext is all zeros."""
    i = len(inner)
    while i > 0 and inner[i - 1] == 0:
        i -= 1
    if i == 0:
        return b"", 0
    return inner[:i - 1], inner[i - 1]


# ---- TLS 1.2 ----------------------------------------------------------------------------------

class Tls12Client:
    """A TLS 1.2 client with AES-128-GCM: ECDHE (certificate servers), or with psk=(identity,
    key) plain PSK, PSK-AES128-GCM-SHA256 (RFC 4279 section 2, RFC 5487: the devices' suite).
    It stops before its ChangeCipherSpec so a case can replace it, or completes with
    connect()."""

    ECDHE_SUITES = [0xC02F, 0xC02B]  # ECDHE-RSA / ECDHE-ECDSA with AES_128_GCM_SHA256
    PSK_SUITES = [0x00A8]            # TLS_PSK_WITH_AES_128_GCM_SHA256

    def __init__(self, port, server_name="localhost", psk=None):
        self.conn = Conn(port)
        self.server_name = server_name
        self.psk = psk
        self.SUITES = self.PSK_SUITES if psk is not None else self.ECDHE_SUITES
        self.write = None
        self.read = None
        self.transcript = b""
        self.out = Outcome()
        self.client_verify = b""

    def client_hello(self, reneg_info=b""):
        name = self.server_name.encode()
        exts = b"".join([
            ext(0x0000, vec16(u8(0) + vec16(name))),                    # server_name
            ext(0x000a, vec16(u16(0x001d) + u16(0x0017))),              # x25519, secp256r1
            ext(0x000b, vec8(u8(0))),                                   # ec_point_formats
            ext(0x000d, vec16(b"".join(u16(a) for a in SIG_ALGS))),     # signature_algorithms
            ext(0xff01, vec8(reneg_info)),                              # renegotiation_info
        ])
        self.client_random = os.urandom(32)
        body = (u16(0x0303) + self.client_random + vec8(b"") +
                vec16(b"".join(u16(s) for s in self.SUITES)) + vec8(u8(0)) + vec16(exts))
        return handshake_msg(CLIENT_HELLO, body)

    def handshake(self, timeout=5.0):
        """ClientHello .. ServerHelloDone, then the ClientKeyExchange; stops before the CCS.
        Returns False (with self.out set) if the server refused."""
        ch = self.client_hello()
        self.transcript = ch
        self.conn.send(record(HANDSHAKE, ch, 0x0301))
        hs = HandshakeReader()
        ske = None
        while True:
            rec = self.conn.read_record(timeout)
            if rec is None:
                self.out.closed = True
                return False
            kind, _, body = rec
            if kind == ALERT:
                self.out.alerts.append((body[0], body[1]))
                return False
            if kind != HANDSHAKE:
                raise PeerError("record type %d in the server's first flight" % kind)
            hs.feed(body)
            done = False
            while True:
                msg = hs.next()
                if msg is None:
                    break
                self.transcript += msg
                if msg[0] == SERVER_HELLO:
                    self.server_random, _, suite, exts = parse_server_hello(msg[4:])
                    if suite not in self.SUITES:
                        raise PeerError("unexpected suite %04x" % suite)
                    if 0x0017 in exts:
                        raise PeerError("extended master secret (not offered)")
                elif msg[0] == SERVER_KEY_EXCHANGE:
                    ske = msg[4:]
                elif msg[0] == CERTIFICATE_REQUEST:
                    raise PeerError("the server asks for a client certificate")
                elif msg[0] == SERVER_HELLO_DONE:
                    done = True
            if done:
                break
        if self.psk is not None:
            # RFC 4279 section 2: the identity; premaster = N, N zeros, N, the key
            identity, key = self.psk
            self.transcript += self.finish_key_exchange(
                vec16(identity), u16(len(key)) + bytes(len(key)) + u16(len(key)) + key)
            return True
        if ske is None or ske[0] != 3:
            raise PeerError("no named-curve ServerKeyExchange")
        group = struct.unpack("!H", ske[1:3])[0]
        point = ske[4:4 + ske[3]]
        if group == 0x001d:
            key = x25519.X25519PrivateKey.generate()
            shared = key.exchange(x25519.X25519PublicKey.from_public_bytes(point))
            pub = key.public_key().public_bytes(serialization.Encoding.Raw,
                                                serialization.PublicFormat.Raw)
        elif group == 0x0017:
            key = ec.generate_private_key(ec.SECP256R1())
            peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
            shared = key.exchange(ec.ECDH(), peer)
            pub = key.public_key().public_bytes(serialization.Encoding.X962,
                                                serialization.PublicFormat.UncompressedPoint)
        else:
            raise PeerError("group %04x not offered" % group)
        self.transcript += self.finish_key_exchange(vec8(pub), shared)
        return True

    def finish_key_exchange(self, exchange_keys, premaster):
        """Sends the ClientKeyExchange and derives the keys (RFC 5246 8.1, 6.3); returns the
        message for the transcript."""
        cke = handshake_msg(CLIENT_KEY_EXCHANGE, exchange_keys)
        self.conn.send(record(HANDSHAKE, cke))
        self.master = prf12(premaster, b"master secret",
                            self.client_random + self.server_random, 48)
        block = prf12(self.master, b"key expansion", self.server_random + self.client_random, 40)
        self.next_write = Protection12(block[0:16], block[32:36])
        self.next_read = Protection12(block[16:32], block[36:40])
        return cke

    def finish(self, timeout=5.0):
        """CCS + Finished, then the server's CCS + Finished."""
        self.client_verify = prf12(self.master, b"client finished",
                                   hashlib.sha256(self.transcript).digest(), 12)
        fin = handshake_msg(FINISHED, self.client_verify)
        self.transcript += fin
        self.write = self.next_write
        self.conn.send(record(CHANGE_CIPHER_SPEC, b"\x01") + self.write.seal(HANDSHAKE, fin))
        while True:
            rec = self.conn.read_record(timeout)
            if rec is None:
                self.out.closed = True
                return False
            kind, _, body = rec
            if kind == CHANGE_CIPHER_SPEC:
                self.read = self.next_read
                continue
            if kind == ALERT and self.read is None:
                self.out.alerts.append((body[0], body[1]))
                return False
            plain = self.read.open(kind, body)
            if kind == ALERT:
                self.out.alerts.append((plain[0], plain[1]))
                return False
            if kind == HANDSHAKE and plain[0] == FINISHED:
                want = prf12(self.master, b"server finished",
                             hashlib.sha256(self.transcript).digest(), 12)
                if not hmac.compare_digest(want, plain[4:]):
                    raise PeerError("the server's Finished does not verify")
                self.server_verify = plain[4:]
                return True

    def connect(self):
        if not self.handshake() or not self.finish():
            raise PeerError("handshake refused: %s" % self.out)

    def send_raw(self, data):
        self.conn.send(data)

    def seal(self, kind, payload):
        return self.write.seal(kind, payload)

    def send_protected(self, kind, payload):
        self.conn.send(self.seal(kind, payload))

    def renegotiation_hello(self):
        """A ClientHello for a renegotiation, with this connection's verify_data (RFC 5746)."""
        return self.client_hello(self.client_verify)

    def outcome(self, timeout=2.0):
        out = self.out
        while True:
            try:
                rec = self.conn.read_record(timeout)
            except socket.timeout:
                break
            if rec is None:
                out.closed = True
                out.reset = self.conn.reset
                break
            kind, _, body = rec
            if self.read is None:
                plain = body
            else:
                try:
                    plain = self.read.open(kind, body)
                except InvalidTag:
                    if kind == ALERT and len(body) == 2:
                        plain = body  # a plaintext alert
                    else:
                        out.undecryptable += 1
                        continue
            if kind == ALERT:
                out.alerts.append((plain[0], plain[1]) if len(plain) >= 2 else (-1, -1))
            elif kind == APPLICATION_DATA:
                out.data += plain
        return out

    def close(self):
        self.conn.close()


# ---- the server under test ----------------------------------------------------------------------

class TernServer:
    """A tern program started on a free loopback port (it logs "listening ... addr=..."), its
    log read connection by connection, stopped by its PID."""

    def __init__(self, argv, log_path):
        import re
        import subprocess
        self.log_path = log_path
        self.log = open(log_path, "w+")
        self.proc = subprocess.Popen(argv + ["--listen", "127.0.0.1:0", "--threads", "1",
                                             "--log-level", "debug"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.log)
        self.offset = 0
        self.port = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.poll() is None:
            m = re.search(r'msg="listening".*addr=127\.0\.0\.1:(\d+)', self.read_log())
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.05)
        if self.port is None:
            self.stop()
            raise PeerError("the server did not log its port within 10 s:\n" + self.read_log())

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def new_lines(self, want=None, timeout=2.0):
        """The log lines written since the last call; waits up to `timeout` for one that
        contains `want`."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.read_log()[self.offset:]
            if want is None or want in text or time.monotonic() > deadline:
                self.offset += len(text)
                return text
            time.sleep(0.05)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---- running cases ----------------------------------------------------------------------------

def run_cases(cases, server, client_timeout=1.5):
    """Runs conformance cases against `server` one after the other; prints one line each and
    returns the number of failures. A case is (name, function(port) -> client after sending,
    the alert expected or None (a description: a fatal alert; or (level, description)), the
    data expected back, whether the connection must end, a text the server's log must show
    for it or None)."""
    failures = 0
    for name, fn, alert, data, closed, log in cases:
        problems = []
        try:
            c = fn(server.port)
            out = c.outcome(client_timeout)
            c.close()
        except (PeerError, OSError) as e:
            print("FAIL: %s: %s" % (name, e))
            failures += 1
            server.new_lines()
            continue
        got = out.alert
        level = 2
        if isinstance(alert, tuple):
            level, alert = alert
        if alert is None and got is not None:
            problems.append("no alert expected, got %s(%d)" % (alert_name(got[1]), got[1]))
        if alert is not None and (got is None or got[1] != alert):
            problems.append("expected %s(%d)" % (alert_name(alert), alert))
        if alert is not None and got is not None and got[0] != level:
            problems.append("expected alert level %d" % level)
        if out.data != data:
            problems.append("expected data %r" % data[:32])
        if closed != out.closed:
            problems.append("the connection should %s" % ("close" if closed else "stay open"))
        lines = server.new_lines(log, timeout=2.0 if log else 0.2)
        if log is not None and log not in lines:
            problems.append("the server's log does not say %r" % log)
        if problems:
            failures += 1
            print("FAIL: %s: %s; got %s" % (name, "; ".join(problems), out))
            print("  server log: %s" % (lines.strip() or "(nothing)"))
        else:
            print("ok: %s (%s)" % (name, out))
    return failures
