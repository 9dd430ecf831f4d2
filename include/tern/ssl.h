/* SPDX-License-Identifier: MIT */
/**
 * @file ssl.h
 * TLS library information (QSslSocket::supportsSsl, sslLibraryVersionNumber/String). The TLS
 * socket, configuration and verification APIs come with the next issue.
 */
#ifndef TERN_SSL_H
#define TERN_SSL_H

#include <tern/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Whether TLS is available in this build (always true: wolfSSL is linked in). @thread any */
TERN_API bool tern_ssl_supports_ssl(void);

/** The TLS library's version at run time ("5.7.2"). @return a static string. @thread any */
TERN_API const char *tern_ssl_library_version_string(void);

/** The TLS library's version number at run time (wolfSSL's hex form). @thread any */
TERN_API unsigned long tern_ssl_library_version_number(void);

/** The TLS library's version tern was built against. @return a static string. @thread any */
TERN_API const char *tern_ssl_library_build_version_string(void);

#ifdef __cplusplus
}
#endif
#endif
