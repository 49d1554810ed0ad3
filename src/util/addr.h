/* Engine names: "ip", "ip:port", "[ip6]", "[ip6]:port". No host names. */
#ifndef KVX_UTIL_ADDR_H
#define KVX_UTIL_ADDR_H

#include <kvx/engine.h>
#include <kvx/status.h>
#include <netinet/in.h>
#include <sys/socket.h>

typedef struct kvx_addr {
    struct sockaddr_storage sa; /* port 0 when none was given */
    socklen_t sa_len;
    int has_port;
    int port; /* 0..65535; meaningful if has_port */
} kvx_addr_t;

/* Parse an engine name. Returns KVX_ERR_INVALID_PARAM (with the reason in
 * kvx_last_error()) on anything that is not exactly one of the four forms. */
kvx_status_t kvx_addr_parse(const char *name, kvx_addr_t *addr);

/* Canonical text: "1.2.3.4", "1.2.3.4:80", "[::1]", "[::1]:80". */
void kvx_addr_format(const kvx_addr_t *addr, char *buf, size_t len);

/* From a socket address (e.g. getsockname); has_port is set. */
void kvx_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, kvx_addr_t *addr);

#endif
