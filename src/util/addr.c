#include "util/addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "util/error.h"

static int parse_port(const char *s, int *port_p)
{
    if (*s == '\0' || strlen(s) > 5) {
        return -1;
    }
    int port = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }
        port = port * 10 + (*p - '0');
    }
    if (port > 65535) {
        return -1;
    }
    *port_p = port;
    return 0;
}

kvx_status_t kvx_addr_parse(const char *name, kvx_addr_t *addr)
{
    if (name == NULL || addr == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "engine name is NULL");
    }
    size_t n = strnlen(name, KVX_ENGINE_NAME_MAX);
    if (n == 0 || n >= KVX_ENGINE_NAME_MAX) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "engine name is empty or longer than %d bytes",
                        KVX_ENGINE_NAME_MAX - 1);
    }
    char host[KVX_ENGINE_NAME_MAX];
    const char *port_text = NULL;
    int v6 = 0;

    memset(addr, 0, sizeof(*addr));
    if (name[0] == '[') {
        const char *close = strchr(name, ']');
        if (close == NULL) {
            return KVX_FAIL(KVX_ERR_INVALID_PARAM, "engine name '%s': missing ']'", name);
        }
        size_t hl = (size_t)(close - name - 1);
        memcpy(host, name + 1, hl);
        host[hl] = '\0';
        if (close[1] == ':') {
            port_text = close + 2;
        } else if (close[1] != '\0') {
            return KVX_FAIL(KVX_ERR_INVALID_PARAM, "engine name '%s': junk after ']'", name);
        }
        v6 = 1;
    } else {
        const char *colon = strchr(name, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL) {
            return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                            "engine name '%s': write IPv6 addresses as [addr] or [addr]:port",
                            name);
        }
        size_t hl = (colon != NULL) ? (size_t)(colon - name) : n;
        memcpy(host, name, hl);
        host[hl] = '\0';
        if (colon != NULL) {
            port_text = colon + 1;
        }
    }

    if (port_text != NULL) {
        if (parse_port(port_text, &addr->port) != 0) {
            return KVX_FAIL(KVX_ERR_INVALID_PARAM, "engine name '%s': bad port '%s'", name,
                            port_text);
        }
        addr->has_port = 1;
    }

    if (v6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&addr->sa;
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) {
            return KVX_FAIL(KVX_ERR_INVALID_PARAM, "engine name '%s': '%s' is not an IPv6 address",
                            name, host);
        }
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)addr->port);
        addr->sa_len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&addr->sa;
        /* inet_pton accepts only dotted quads, so "1", "1.2" and names fail. */
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) {
            return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                            "engine name '%s': '%s' is not an IPv4 address (host names are "
                            "not resolved)",
                            name, host);
        }
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)addr->port);
        addr->sa_len = sizeof(*s4);
    }
    return KVX_OK;
}

void kvx_addr_format(const kvx_addr_t *addr, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int v6 = addr->sa.ss_family == AF_INET6;
    if (v6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&addr->sa)->sin6_addr, host,
                  sizeof(host));
    } else {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&addr->sa)->sin_addr, host, sizeof(host));
    }
    if (addr->has_port) {
        snprintf(buf, len, v6 ? "[%s]:%d" : "%s:%d", host, addr->port);
    } else {
        snprintf(buf, len, v6 ? "[%s]" : "%s", host);
    }
}

void kvx_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, kvx_addr_t *addr)
{
    memset(addr, 0, sizeof(*addr));
    if (len > sizeof(addr->sa)) {
        len = sizeof(addr->sa);
    }
    memcpy(&addr->sa, sa, len);
    addr->sa_len = len;
    addr->has_port = 1;
    if (sa->sa_family == AF_INET6) {
        addr->port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    } else {
        addr->port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    }
}
