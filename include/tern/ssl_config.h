/* SPDX-License-Identifier: MIT */
/**
 * @file ssl_config.h
 * The TLS configuration (QSslConfiguration): protocols, ciphers, the local certificate and
 * key, CA certificates, peer verification. Built on one thread, then shared read-only by
 * every reactor: it is frozen at first use (a server or socket took it), after which setters
 * return TERN_EBUSY. Reference counted: `_new` gives one reference, `_ref`/`_unref` are
 * @thread any.
 *
 * Loaders copy what they read. A failed setter leaves the configuration as it was and says
 * why in `tern_ssl_config_error_string`.
 */
#ifndef TERN_SSL_CONFIG_H
#define TERN_SSL_CONFIG_H

#include <tern/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** TLS protocol versions. */
enum tern_ssl_protocol {
    TERN_SSL_PROTOCOL_UNKNOWN = 0,
    TERN_SSL_PROTOCOL_TLS1_2 = 0x0303,
    TERN_SSL_PROTOCOL_TLS1_3 = 0x0304,
};

/** Encodings of certificates and keys. */
enum tern_encoding {
    TERN_ENCODING_PEM,
    TERN_ENCODING_DER,
};

/** Peer verification modes, as QSslSocket::PeerVerifyMode. */
enum tern_verify_mode {
    TERN_VERIFY_AUTO,       /**< QUERY_PEER on servers, VERIFY_PEER on clients (default) */
    TERN_VERIFY_NONE,       /**< do not ask for / check the peer's certificate */
    TERN_VERIFY_QUERY_PEER, /**< ask for it; a missing or invalid one is not an error */
    TERN_VERIFY_VERIFY_PEER /**< require a valid certificate; otherwise ssl_errors, close */
};

/** Creates a configuration with secure defaults (TLS 1.2..1.3, AEAD suites with forward
 * secrecy, VERIFY_AUTO). @return it, or NULL when out of memory. @thread setup */
TERN_API tern_ssl_config *tern_ssl_config_new(void);

/** Adds a reference. @return @p cfg. @thread any */
TERN_API tern_ssl_config *tern_ssl_config_ref(tern_ssl_config *cfg);

/** Drops a reference; the last frees it (keys are zeroed). NULL is a no-op. @thread any */
TERN_API void tern_ssl_config_unref(tern_ssl_config *cfg);

/** Why the last failed call failed ("key.pem: wrong passphrase or not a key"), or "".
 * @return borrowed until the next call on @p cfg. @thread setup */
TERN_API const char *tern_ssl_config_error_string(const tern_ssl_config *cfg);

/**
 * Allowed protocol range. @return 0; TERN_EINVAL (unknown version, @p min > @p max);
 * TERN_EBUSY once frozen. @thread setup
 */
TERN_API int tern_ssl_config_set_protocol_range(tern_ssl_config *cfg, enum tern_ssl_protocol min,
                                                enum tern_ssl_protocol max);

/**
 * The cipher suites, as a ':'-separated list of names (wolfSSL/OpenSSL or IANA names, TLS
 * 1.3 suites included). Weak suites (RC4, 3DES, NULL, anonymous, export, the integrity-only
 * TLS13-SHA256-SHA256) are refused, not filtered: a list naming one is an error. While TLS
 * 1.3 is allowed the list must name a TLS 1.3 suite (otherwise TLS 1.3 would quietly use
 * suites not in the list): limit the protocol range to TLS 1.2 first for a 1.2-only list.
 * @return 0; TERN_EINVAL naming the first unknown or weak suite; TERN_EBUSY. @thread setup
 */
TERN_API int tern_ssl_config_set_ciphers(tern_ssl_config *cfg, const char *list);

/**
 * The key-exchange groups, in order of preference, ':'-separated, by their IANA/OpenSSL names
 * (case does not matter): the post-quantum hybrids X25519MLKEM768, SecP256r1MLKEM768,
 * SecP384r1MLKEM1024 (TLS 1.3 only); X25519, P-256 (also secp256r1, prime256v1), P-384
 * (secp384r1), P-521 (secp521r1), X448, ffdhe2048, ffdhe3072. A group this build of the TLS
 * library lacks is refused ("groups: X448 is not in this build"), never silently dropped.
 * The list applies to both roles of the configuration:
 * - A TLS 1.3 client offers these groups and sends a key share for the first one; when the
 *   first is a hybrid it sends one for the first classic group too (as browsers do), so that a
 *   server without the hybrid needs no HelloRetryRequest (a round trip more).
 * - A TLS 1.3 server picks, among the key shares the client sent, the one of its most
 *   preferred group; it asks for another share (HelloRetryRequest) only when none of the
 *   client's shares is in its list. (A TLS 1.2 server picks among the client's curves.)
 *
 * Defaults, set by tern (not the TLS library's, which changed in wolfSSL 5.9 to put hybrids
 * and larger curves first):
 * - servers: X25519MLKEM768, SecP256r1MLKEM768, SecP384r1MLKEM1024, X25519, P-256, P-384,
 *   P-521, ffdhe2048: a client offering a hybrid gets it (post-quantum protection for those
 *   that ask: one ML-KEM encapsulation more per handshake); a client offering only classic
 *   groups gets the group of its key share at once, no retry.
 * - clients: X25519, P-256, P-384, P-521, ffdhe2048, one key share (X25519): the fastest
 *   classic handshake, accepted by every current server without a retry; the hybrid is not
 *   offered unless asked for ("X25519MLKEM768:X25519"), because it adds ~1.2 KiB to the
 *   ClientHello and, listed without a key share, may make a server that prefers it ask for
 *   one.
 * The group a connection used: `tern_socket_session_group`.
 * @return 0; TERN_EINVAL naming the first unknown group (or an empty list or element);
 *         TERN_E_UNSUPPORTED naming a group this build lacks; TERN_EBUSY. @thread setup
 */
TERN_API int tern_ssl_config_set_groups(tern_ssl_config *cfg, const char *list);

/** The default cipher list (TLS 1.3 AEAD suites, then TLS 1.2 ECDHE AEAD suites).
 * @return a static string. @thread any */
TERN_API const char *tern_ssl_default_ciphers(void);

/**
 * The local certificate, followed by its chain, from a file (PEM: the leaf first, then
 * intermediates; DER: the leaf alone). @return 0; TERN_EINVAL (unreadable, not a
 * certificate); TERN_EBUSY. @thread setup
 */
TERN_API int tern_ssl_config_set_local_certificate_file(tern_ssl_config *cfg, const char *path,
                                                        enum tern_encoding enc);

/** Like `tern_ssl_config_set_local_certificate_file` from memory (copied). @thread setup */
TERN_API int tern_ssl_config_set_local_certificate(tern_ssl_config *cfg, const void *data,
                                                   size_t len, enum tern_encoding enc);

/**
 * The local certificate and its chain from certificate objects (QSslConfiguration::
 * setLocalCertificateChain): @p certs[0] is the leaf, then the intermediates, as a server
 * sends them; @p n 1 sets the leaf alone. The objects are read, not kept.
 * @return 0; TERN_EINVAL (@p n 0, a NULL entry, refused by the TLS library); TERN_ENOMEM;
 *         TERN_EBUSY. @thread setup
 */
TERN_API int tern_ssl_config_set_local_certificate_chain(tern_ssl_config *cfg,
                                                        tern_certificate *const *certs, size_t n);

/**
 * Appends the intermediate certificates in the PEM file @p path to the local certificate set
 * before (by `tern_ssl_config_set_local_certificate*`, in PEM): the server sends the leaf,
 * then these, in the file's order. For a leaf and its chain kept in two files (a CA's
 * "cert.pem" and "chain.pem"); a leaf file that holds its chain needs no call. May be called
 * again to append more.
 * @return 0; TERN_EINVAL, the error string naming the file ("certificate chain FILE: no PEM
 *         certificate in it (expected -----BEGIN CERTIFICATE-----)", unreadable, over 4 MiB,
 *         refused by the TLS library; no local certificate yet, or a DER one); TERN_ENOMEM;
 *         TERN_EBUSY. @thread setup
 */
TERN_API int tern_ssl_config_add_local_certificate_chain_file(tern_ssl_config *cfg,
                                                             const char *path);

/**
 * The private key (RSA or EC; PEM may be encrypted, then @p passphrase decrypts it) from a
 * file. The key must match the certificate when both are set. For a passphrase kept in a
 * file, see `tern_ssl_read_passphrase_file`.
 * @return 0; TERN_EACCES if the PEM key is encrypted and @p passphrase is NULL ("private key
 *         FILE: the key is encrypted: give its passphrase"); TERN_EINVAL (unreadable, wrong
 *         passphrase, not a key, does not match the certificate); TERN_EBUSY. @thread setup
 */
TERN_API int tern_ssl_config_set_private_key_file(tern_ssl_config *cfg, const char *path,
                                                  enum tern_encoding enc, const char *passphrase);

/** Like `tern_ssl_config_set_private_key_file` from memory. @thread setup */
TERN_API int tern_ssl_config_set_private_key(tern_ssl_config *cfg, const void *data, size_t len,
                                             enum tern_encoding enc, const char *passphrase);

/** The longest passphrase `tern_ssl_read_passphrase_file` accepts, in bytes. */
#define TERN_SSL_MAX_PASSPHRASE 1023

/**
 * Reads the passphrase of an encrypted private key from a file (kept out of the command line
 * and the environment, as nginx's ssl_password_file): the file's content without one trailing
 * "\n" or "\r\n", 1..TERN_SSL_MAX_PASSPHRASE bytes, no NUL byte. The file is read with
 * read(2), so no stdio buffer keeps a copy; zero @p buf once the key is loaded.
 * @param buf  receives the passphrase, NUL-terminated (TERN_SSL_MAX_PASSPHRASE + 1 bytes
 *             always suffice)
 * @param err  (may be NULL) on failure "FILE: reason": its errno text, "empty (expected the
 *             key's passphrase)", "longer than 1023 bytes: not a passphrase file", "holds a
 *             NUL byte: not a passphrase file"; else ""
 * @return the passphrase's length; TERN_EINVAL (@p buf zeroed); TERN_ENOBUFS if it does not
 *         fit in @p size bytes. @thread any
 */
TERN_API ssize_t tern_ssl_read_passphrase_file(const char *path, char *buf, size_t size,
                                               char *err, size_t err_len);

/** Trusts the CA certificates in a file (PEM: one or more; DER: one). @return 0;
 * TERN_EINVAL; TERN_EBUSY. @thread setup */
TERN_API int tern_ssl_config_add_ca_certificates_file(tern_ssl_config *cfg, const char *path,
                                                      enum tern_encoding enc);

/** Trusts every PEM certificate file in a directory (c_rehash-style hash names are not
 * needed). @return 0; TERN_EINVAL (unreadable, or no certificate found). @thread setup */
TERN_API int tern_ssl_config_add_ca_certificates_dir(tern_ssl_config *cfg, const char *dir);

/** Trusts CA certificates from memory. @thread setup */
TERN_API int tern_ssl_config_add_ca_certificates(tern_ssl_config *cfg, const void *data,
                                                 size_t len, enum tern_encoding enc);

/** Trusts the @p n certificates @p certs (QSslConfiguration::addCaCertificates with a list);
 * they are read, not kept. @return 0; TERN_EINVAL (@p n 0, a NULL entry, refused by the TLS
 * library); TERN_ENOMEM; TERN_EBUSY. @thread setup */
TERN_API int tern_ssl_config_add_ca_certificate_list(tern_ssl_config *cfg,
                                                    tern_certificate *const *certs, size_t n);

/** Trusts the system's CA store. @return 0; TERN_EINVAL if none was found. @thread setup */
TERN_API int tern_ssl_config_add_system_ca_certificates(tern_ssl_config *cfg);

/**
 * Adds a certificate revocation list (RFC 5280 section 5) from a file (PEM: one CRL; DER),
 * and turns revocation checking on, for both roles: the peer's certificate is checked against
 * its issuer's CRL, and a listed one is the ssl error CERTIFICATE_REVOKED (a server verifying
 * client certificates, a client verifying the server). The CRL's issuer must be trusted
 * already (add the CA certificates first): its signature is checked when it is loaded. Once
 * one CRL is added, every peer's issuer needs one: a peer whose issuer has none gets
 * UNABLE_TO_GET_CRL, and one whose CRL is past its next update CRL_EXPIRED. Only the peer's
 * own certificate is checked, not the intermediates above it. Refreshing a CRL means building
 * a new configuration (hot reload).
 * @return 0; TERN_EINVAL, the error string naming the file ("CRL FILE: its issuer is not
 *         trusted (add the CA certificates first)", "... its signature does not verify", "...
 *         no PEM CRL in it", unreadable); TERN_E_UNSUPPORTED (no CRL support in this build);
 *         TERN_EBUSY. @thread setup
 */
TERN_API int tern_ssl_config_add_crl_file(tern_ssl_config *cfg, const char *path,
                                          enum tern_encoding enc);

/** Like `tern_ssl_config_add_crl_file` for every regular file of @p dir that holds a PEM CRL
 * (other files are skipped; a CRL that does not load is an error naming its file).
 * @return 0; TERN_EINVAL (unreadable directory, no CRL in it, a CRL refused); TERN_EBUSY.
 * @thread setup */
TERN_API int tern_ssl_config_add_crl_dir(tern_ssl_config *cfg, const char *dir);

/** Like `tern_ssl_config_add_crl_file` from memory (read, not kept). @thread setup */
TERN_API int tern_ssl_config_add_crl(tern_ssl_config *cfg, const void *data, size_t len,
                                     enum tern_encoding enc);

/** The peer verification mode (default AUTO). @thread setup */
TERN_API int tern_ssl_config_set_peer_verify_mode(tern_ssl_config *cfg, enum tern_verify_mode mode);

/** The longest peer chain accepted (default 9, 0..100): the number of CA certificates above
 * the peer's own, its trust anchor included, as OpenSSL counts. A longer chain is the ssl
 * error CHAIN_TOO_LONG. @thread setup */
TERN_API int tern_ssl_config_set_peer_verify_depth(tern_ssl_config *cfg, int depth);

/** TLS handshake deadline from accept / connect to `encrypted`, in ms (default 10000; 0:
 * none). A total deadline: a client dripping bytes cannot extend it. @thread setup */
TERN_API int tern_ssl_config_set_handshake_timeout(tern_ssl_config *cfg, uint32_t ms);

/**
 * ALPN protocols, comma-separated ("h2,http/1.1"). A client offers them in this order; a
 * server accepts the first protocol of the client's list that is also in its own (the
 * client's preference decides: wolfSSL's server-side selection callback is not in tern's
 * build), and refuses the handshake (no_application_protocol) if the client offers ALPN and
 * none matches.
 * @return 0; TERN_EINVAL (empty name, a name over 255 bytes); TERN_EBUSY. @thread setup
 */
TERN_API int tern_ssl_config_set_alpn(tern_ssl_config *cfg, const char *list);

/**
 * Server name indication on a server: when a client asks for @p name (exact match, case
 * insensitive), the handshake uses @p for_name's certificate and key instead of @p cfg's.
 * @p for_name is referenced and frozen. Clients without SNI, or with another name, get
 * @p cfg's certificate. @return 0; TERN_EINVAL (@p for_name without certificate and key);
 * TERN_ENOMEM; TERN_EBUSY. @thread setup
 */
TERN_API int tern_ssl_config_add_server_name(tern_ssl_config *cfg, const char *name,
                                             tern_ssl_config *for_name);

/**
 * OCSP stapling on a server: @p der (copied) is the DER OCSP response for the local
 * certificate, sent to clients that ask for certificate status. wolfSSL checks it before
 * stapling: it must be signed by (or for) the certificate's issuer, which must be trusted
 * with `tern_ssl_config_add_ca_certificates*`, and the certificate must name an OCSP
 * responder (authorityInfoAccess, as public CAs' certificates do); otherwise nothing is
 * stapled. Replace it by building a new configuration (hot reload).
 * @return 0; TERN_EINVAL (empty); TERN_ENOMEM; TERN_EBUSY. @thread setup
 */
TERN_API int tern_ssl_config_set_ocsp_response(tern_ssl_config *cfg, const void *der, size_t len);

/**
 * Enables PSK: on servers, clients may authenticate with a pre-shared key (the
 * `psk_authentication_required` event answers); on clients, `tern_socket_set_psk` provides
 * one. The cipher list becomes the PSK list: TLS 1.3 suites (external PSK, with (EC)DHE), then
 * TLS 1.2 ECDHE-PSK and plain PSK suites (AES-GCM, ChaCha20, AES-CCM-8, AES-CBC: plain PSK
 * suites have no forward secrecy; devices need them), then, if the configuration has a
 * certificate, the certificate suites of the default list. @p hint (TLS 1.2 identity hint,
 * servers; may be NULL) is copied.
 * @return 0; TERN_EINVAL (hint over 128 bytes); TERN_E_UNSUPPORTED (no PSK in this build);
 *         TERN_EBUSY. @thread setup
 */
TERN_API int tern_ssl_config_enable_psk(tern_ssl_config *cfg, const char *hint);

/** TLS 1.3 PSK key exchange modes (RFC 8446 4.2.9). */
enum tern_psk_modes {
    TERN_PSK_MODES_ANY,    /**< psk_dhe_ke and psk_ke (default); a server picks psk_dhe_ke
                            *   when the client offers both */
    TERN_PSK_MODES_DHE_KE, /**< psk_dhe_ke only: an (EC)DHE exchange with the PSK (forward
                            *   secrecy) */
    TERN_PSK_MODES_KE,     /**< psk_ke only: the PSK alone, no key share in the handshake
                            *   (no forward secrecy; the cheapest handshake) */
};

/**
 * The TLS 1.3 PSK key exchange modes @p cfg offers (clients: the psk_key_exchange_modes
 * extension) and accepts (servers). A server that accepts only one mode refuses a client
 * offering only the other. No effect on TLS 1.2.
 * @return 0; TERN_EINVAL (not a mode); TERN_E_UNSUPPORTED (no TLS 1.3 PSK in this build);
 *         TERN_EBUSY (frozen). @thread setup
 */
TERN_API int tern_ssl_config_set_psk_modes(tern_ssl_config *cfg, enum tern_psk_modes modes);

/** What a client does about the server's certificate status (OCSP stapling). */
enum tern_ocsp_policy {
    TERN_OCSP_OFF,     /**< do not ask (default) */
    TERN_OCSP_REQUEST, /**< ask; a stapled response is verified, and what it says is an ssl
                        *   error (CERTIFICATE_REVOKED, OCSP_STATUS_UNKNOWN,
                        *   OCSP_RESPONSE_CANNOT_BE_TRUSTED, ...); no response is fine */
    TERN_OCSP_REQUIRE, /**< "must staple": as REQUEST, and no response at all is the ssl
                        *   error OCSP_NO_RESPONSE */
};

/** The client's OCSP stapling policy. Its errors are ssl errors like the certificate's: under
 * VERIFY_PEER they close the connection unless ignored (`ssl_errors`); the response itself is
 * `tern_socket_ocsp_response`. @return 0; TERN_EINVAL; TERN_EBUSY. @thread setup */
TERN_API int tern_ssl_config_set_ocsp_stapling(tern_ssl_config *cfg, enum tern_ocsp_policy policy);

/** Like `tern_ssl_config_set_ocsp_response` from a DER file. @thread setup */
TERN_API int tern_ssl_config_set_ocsp_response_file(tern_ssl_config *cfg, const char *path);

/**
 * The process default configuration (QSslConfiguration::setDefaultConfiguration): a socket
 * without a configuration of its own (and not accepted by a server) uses the default in effect
 * when its handshake starts (`tern_socket_start_*_encryption`,
 * `tern_socket_connect_to_host_encrypted`). @p cfg is referenced and frozen; NULL clears the
 * default. Replacing it does not change sockets that already took the former one (they hold
 * their reference). @return 0. @thread any
 */
TERN_API int tern_ssl_config_set_default(tern_ssl_config *cfg);

/** The process default configuration. @return a new reference (release it with
 * `tern_ssl_config_unref`), or NULL when none is set. @thread any */
TERN_API tern_ssl_config *tern_ssl_config_default(void);

#ifdef __cplusplus
}
#endif
#endif
