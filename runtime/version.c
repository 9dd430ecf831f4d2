/* SPDX-License-Identifier: MIT */
#include <tern/version.h>

unsigned tern_version_number(void)
{
    return TERN_VERSION_NUMBER;
}

const char *tern_version_string(void)
{
    return TERN_VERSION_STRING;
}
