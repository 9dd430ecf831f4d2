/* sizeof tern's per-connection structs (compiled against the repo's headers, nothing changed) */
#include <stdio.h>
#include "socket_impl.h"
#include "ssl_internal.h"
int main(void)
{
    printf("sizeof(tern_socket) %zu, sizeof(tern__tls) %zu\n", sizeof(struct tern_socket), sizeof(tern__tls));
    return 0;
}
