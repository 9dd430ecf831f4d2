/* SPDX-License-Identifier: MIT */
/**
 * @file ssl.h
 * TLS library information (QSslSocket::supportsSsl, sslLibraryVersionNumber/String). The TLS
 * socket calls are in socket.h, the configuration in ssl_config.h, verification errors in
 * ssl_error.h, PSK in psk.h and resumption in session.h.
 */
#ifndef TERN_SSL_H
#define TERN_SSL_H

#include <tern/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Whether TLS is available in this build (always true: wolfSSL is linked in). @thread any */
TERN_API bool tern_ssl_supports_ssl(void);

/** The TLS library's version at run time ("5.9.2"). @return a static string. @thread any */
TERN_API const char *tern_ssl_library_version_string(void);

/** The TLS library's version number at run time (wolfSSL's hex form). @thread any */
TERN_API unsigned long tern_ssl_library_version_number(void);

/** The TLS library's version tern was built against. @return a static string. @thread any */
TERN_API const char *tern_ssl_library_build_version_string(void);

/** The TLS library's version number tern was built against, in the form of
 * `tern_ssl_library_version_number` (wolfSSL's hex: 0x05009002 for 5.9.2). @thread any */
TERN_API unsigned long tern_ssl_library_build_version_number(void);

#ifdef __cplusplus
}
#endif
#endif
