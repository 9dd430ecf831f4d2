/* SPDX-License-Identifier: MIT */
/*
 * TLS library information: which wolfSSL tern was built with and runs on. ssl/ is the only
 * folder that includes wolfSSL headers.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/version.h>

#include <tern/ssl.h>

bool tern_ssl_supports_ssl(void)
{
    return true;
}

const char *tern_ssl_library_version_string(void)
{
    return wolfSSL_lib_version();
}

unsigned long tern_ssl_library_version_number(void)
{
    return (unsigned long)wolfSSL_lib_version_hex();
}

const char *tern_ssl_library_build_version_string(void)
{
    return LIBWOLFSSL_VERSION_STRING;
}

unsigned long tern_ssl_library_build_version_number(void)
{
    return (unsigned long)LIBWOLFSSL_VERSION_HEX;
}
