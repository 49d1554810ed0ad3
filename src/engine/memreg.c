/* Registrations: the sorted table, pinning for in-flight transfers, and
 * address checks of both sides of a transfer. */
#include <kvx/device.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_impl.h"

#define KVX_MEM_PARAM_FIELDS_ALL                                                                   \
    (KVX_MEM_PARAM_FIELD_ADDRESS | KVX_MEM_PARAM_FIELD_LENGTH | KVX_MEM_PARAM_FIELD_TYPE |         \
     KVX_MEM_PARAM_FIELD_TAG | KVX_MEM_PARAM_FIELD_ACCESS)

/* Handle values: unique in the process, so one engine never takes another's. */
static uint64_t next_mem_id;

/* Index of the first registration whose end is above @p addr; engine->lock held. */
static size_t mem_lower_bound(kvx_engine_t *engine, uintptr_t addr)
{
    size_t lo = 0, hi = engine->mem_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        struct kvx_mem *m = engine->mems[mid];
        if (m->addr + m->len <= addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

kvx_status_t kvx_mem_register(kvx_engine_h engine, const kvx_mem_params_t *params, kvx_mem_h *mem_p)
{
    kvx_error_clear();
    if (engine == NULL || params == NULL || mem_p == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "mem_register: NULL argument");
    }
    if (params->field_mask & ~(uint64_t)KVX_MEM_PARAM_FIELDS_ALL) {
        return KVX_FAIL(KVX_ERR_UNSUPPORTED, "mem_register: unknown field_mask bits");
    }
    uint64_t need = KVX_MEM_PARAM_FIELD_ADDRESS | KVX_MEM_PARAM_FIELD_LENGTH;
    if ((params->field_mask & need) != need || params->address == NULL || params->length == 0) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "mem_register: address and length > 0 required");
    }
    uintptr_t addr = (uintptr_t)params->address;
    size_t len = params->length;
    if (addr + len < addr) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "mem_register: range wraps the address space");
    }
    kvx_mem_type_t type =
        (params->field_mask & KVX_MEM_PARAM_FIELD_TYPE) ? params->mem_type : KVX_MEM_HOST;
    kvx_mem_access_t access = (params->field_mask & KVX_MEM_PARAM_FIELD_ACCESS)
                                  ? params->access
                                  : KVX_MEM_ACCESS_READ_WRITE;
    uint64_t tag = (params->field_mask & KVX_MEM_PARAM_FIELD_TAG) ? params->tag : 0;
    if (type != KVX_MEM_HOST && type != KVX_MEM_DEVICE) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "mem_register: unknown memory type %d", type);
    }
    if (access != KVX_MEM_ACCESS_READ_WRITE && access != KVX_MEM_ACCESS_READ_ONLY) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "mem_register: unknown access %d", access);
    }
    if (type == KVX_MEM_DEVICE) {
        int device = -1;
        kvx_status_t st = kvx_device_locate(params->address, len, &device);
        if (st != KVX_OK || device < 0) {
            return KVX_FAIL(KVX_ERR_INVALID_ADDRESS,
                            "mem_register: %p+%zu is not inside one device allocation",
                            params->address, len);
        }
        if (!kvx_device_host_accessible()) {
            /* The tcp transport moves bytes with the CPU; a staging path for
             * device memory the CPU cannot reach is future work. */
            return KVX_FAIL(KVX_ERR_UNSUPPORTED,
                            "mem_register: device memory of backend %s is not host-accessible",
                            kvx_device_backend());
        }
    }

    pthread_mutex_lock(&engine->lock);
    kvx_status_t status = KVX_OK;
    size_t pos = mem_lower_bound(engine, addr);
    if (pos < engine->mem_count) {
        struct kvx_mem *m = engine->mems[pos];
        if (m->addr == addr && m->len == len && m->type == type) {
            if (m->tag != tag || m->access != access) {
                status = KVX_FAIL(KVX_ERR_ALREADY_EXISTS,
                                  "mem_register: %p+%zu is registered with another tag or access",
                                  params->address, len);
                goto out;
            }
            m->user_refs++;
            *mem_p = (kvx_mem_h)(uintptr_t)m->id;
            goto out;
        }
        if (m->addr < addr + len) {
            status =
                KVX_FAIL(KVX_ERR_OVERLAP, "mem_register: %p+%zu overlaps registration 0x%lx+%zu",
                         params->address, len, (unsigned long)m->addr, m->len);
            goto out;
        }
    }
    if (engine->mem_count == engine->mem_cap) {
        size_t cap = engine->mem_cap ? engine->mem_cap * 2 : 16;
        struct kvx_mem **grown = realloc(engine->mems, cap * sizeof(*grown));
        if (grown == NULL) {
            status = KVX_FAIL(KVX_ERR_NO_MEMORY, "mem_register: out of memory");
            goto out;
        }
        engine->mems = grown;
        engine->mem_cap = cap;
    }
    struct kvx_mem *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        status = KVX_FAIL(KVX_ERR_NO_MEMORY, "mem_register: out of memory");
        goto out;
    }
    *m = (struct kvx_mem){
        .addr = addr, .len = len, .type = type, .access = access, .tag = tag, .user_refs = 1};
    /* Same-host peers reach it without us: tell the transport. */
    m->tp_handle =
        engine->tp_ops->mem_add(engine->tp, addr, len, tag, access == KVX_MEM_ACCESS_READ_ONLY);
    memmove(&engine->mems[pos + 1], &engine->mems[pos],
            (engine->mem_count - pos) * sizeof(*engine->mems));
    engine->mems[pos] = m;
    engine->mem_count++;
    m->id = __atomic_add_fetch(&next_mem_id, 1, __ATOMIC_RELAXED);
    *mem_p = (kvx_mem_h)(uintptr_t)m->id;
    kvx_debug("engine %s: registered %s memory %p+%zu", engine->name,
              type == KVX_MEM_DEVICE ? "device" : "host", params->address, len);
out:
    pthread_mutex_unlock(&engine->lock);
    return status;
}

kvx_status_t kvx_mem_deregister(kvx_engine_h engine, kvx_mem_h mem)
{
    kvx_error_clear();
    if (engine == NULL || mem == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "mem_deregister: NULL argument");
    }
    uint64_t id = (uint64_t)(uintptr_t)mem;
    kvx_status_t status = KVX_OK;
    pthread_mutex_lock(&engine->lock);
    /* Handles are ids, looked up, never dereferenced: a stale one misses. */
    size_t pos = 0;
    while (pos < engine->mem_count && engine->mems[pos]->id != id) {
        pos++;
    }
    struct kvx_mem *m = pos < engine->mem_count ? engine->mems[pos] : NULL;
    if (m == NULL) {
        status = KVX_FAIL(KVX_ERR_NOT_FOUND, "mem_deregister: unknown handle %llu",
                          (unsigned long long)id);
    } else if (m->pins > 0) {
        status = KVX_FAIL(KVX_ERR_BUSY, "mem_deregister: 0x%lx+%zu is used by %u transfer(s)",
                          (unsigned long)m->addr, m->len, m->pins);
    } else if (m->user_refs == 1 &&
               engine->tp_ops->mem_remove(engine->tp, m->tp_handle) == KVX_ERR_BUSY) {
        status = KVX_FAIL(KVX_ERR_BUSY, "mem_deregister: 0x%lx+%zu is being copied by a peer",
                          (unsigned long)m->addr, m->len);
    } else if (--m->user_refs == 0) {
        memmove(&engine->mems[pos], &engine->mems[pos + 1],
                (engine->mem_count - pos - 1) * sizeof(*engine->mems));
        engine->mem_count--;
        kvx_debug("engine %s: deregistered 0x%lx+%zu", engine->name, (unsigned long)m->addr,
                  m->len);
        free(m);
    }
    pthread_mutex_unlock(&engine->lock);
    return status;
}

void kvx_mem_destroy_all(kvx_engine_t *engine)
{
    for (size_t i = 0; i < engine->mem_count; i++) {
        free(engine->mems[i]);
    }
    free(engine->mems);
    engine->mems = NULL;
    engine->mem_count = engine->mem_cap = 0;
}

/* Pin the registrations covering every range, or none. A range may span
 * registrations that touch end to end. engine->lock held. */
static kvx_status_t pin_ranges(kvx_engine_t *engine, int remote, int write,
                               const kvx_xfer_desc_t *local, const kvx_wire_desc_t *wire,
                               size_t count, const uint64_t *tag, kvx_pin_t **pin_p)
{
    kvx_pin_t *pin = NULL;
    size_t cap = 0;
    kvx_status_t status = KVX_OK;
    for (size_t i = 0; i < count; i++) {
        uintptr_t addr = local ? (uintptr_t)local[i].local_addr : (uintptr_t)wire[i].addr;
        uint64_t len = local ? local[i].length : wire[i].len;
        uintptr_t end = addr + len;
        if (len == 0 || end < addr) {
            status = KVX_FAIL(KVX_ERR_INVALID_PARAM, "descriptor %zu: bad range 0x%lx+%llu", i,
                              (unsigned long)addr, (unsigned long long)len);
            break;
        }
        size_t pos = mem_lower_bound(engine, addr);
        uintptr_t covered = addr;
        while (pos < engine->mem_count && engine->mems[pos]->addr <= covered && covered < end) {
            struct kvx_mem *m = engine->mems[pos];
            if ((remote && write && m->access == KVX_MEM_ACCESS_READ_ONLY) ||
                (tag != NULL && m->tag != *tag)) {
                break;
            }
            if (pin == NULL || pin->count == 0 || pin->mems[pin->count - 1] != m) {
                if (pin == NULL || pin->count == cap) {
                    size_t ncap = cap ? cap * 2 : 4;
                    kvx_pin_t *grown = realloc(pin, sizeof(*pin) + ncap * sizeof(pin->mems[0]));
                    if (grown == NULL) {
                        status = KVX_FAIL(KVX_ERR_NO_MEMORY, "pin: out of memory");
                        goto fail;
                    }
                    if (pin == NULL) {
                        grown->count = 0;
                    }
                    pin = grown;
                    cap = ncap;
                }
                pin->mems[pin->count++] = m;
                m->pins++;
            }
            covered = m->addr + m->len;
            pos++;
        }
        if (covered < end) {
            status = remote ? KVX_FAIL(KVX_ERR_REMOTE_ACCESS,
                                       "engine %s: peer asked to %s 0x%lx+%llu, not inside "
                                       "memory registered%s",
                                       engine->name, write ? "write" : "read", (unsigned long)addr,
                                       (unsigned long long)len, write ? " read-write" : "")
                            : KVX_FAIL(KVX_ERR_INVALID_ADDRESS,
                                       "descriptor %zu: local range %p+%llu is not inside "
                                       "registered memory",
                                       i, (void *)addr, (unsigned long long)len);
            break;
        }
    }
fail:
    if (status != KVX_OK) {
        kvx_mem_unpin(engine, pin);
        return status;
    }
    *pin_p = pin;
    return KVX_OK;
}

void kvx_mem_unpin(kvx_engine_t *engine, kvx_pin_t *pin)
{
    (void)engine;
    if (pin == NULL) {
        return;
    }
    for (size_t i = 0; i < pin->count; i++) {
        pin->mems[i]->pins--;
    }
    free(pin);
}

kvx_status_t kvx_mem_pin_local(kvx_engine_t *engine, const kvx_xfer_desc_t *descs, size_t count,
                               kvx_pin_t **pin_p)
{
    pthread_mutex_lock(&engine->lock);
    kvx_status_t status = pin_ranges(engine, 0, 0, descs, NULL, count, NULL, pin_p);
    pthread_mutex_unlock(&engine->lock);
    return status;
}

kvx_status_t kvx_mem_pin_remote_access(void *ctx, int write, const kvx_wire_desc_t *descs,
                                       uint32_t count, const uint64_t *tag, void **pin_p)
{
    kvx_engine_t *engine = ctx;
    kvx_pin_t *pin = NULL;
    pthread_mutex_lock(&engine->lock);
    kvx_status_t status = pin_ranges(engine, 1, write, NULL, descs, count, tag, &pin);
    pthread_mutex_unlock(&engine->lock);
    if (status != KVX_OK) {
        /* A peer's bad request is worth a line even at the default level. */
        kvx_warn("%s", kvx_last_error());
        return status;
    }
    *pin_p = pin;
    return KVX_OK;
}

void kvx_mem_unpin_upcall(void *ctx, void *pin)
{
    kvx_engine_t *engine = ctx;
    pthread_mutex_lock(&engine->lock);
    kvx_mem_unpin(engine, pin);
    pthread_mutex_unlock(&engine->lock);
}

kvx_status_t kvx_mem_table_upcall(void *ctx, kvx_wire_mem_entry_t **entries_p, uint32_t *count_p)
{
    kvx_engine_t *engine = ctx;
    pthread_mutex_lock(&engine->lock);
    uint32_t count = engine->mem_count > KVX_WIRE_MAX_MEM_ENTRIES ? KVX_WIRE_MAX_MEM_ENTRIES
                                                                  : (uint32_t)engine->mem_count;
    kvx_wire_mem_entry_t *entries = malloc((count ? count : 1) * sizeof(*entries));
    if (entries == NULL) {
        pthread_mutex_unlock(&engine->lock);
        return KVX_ERR_NO_MEMORY;
    }
    for (uint32_t i = 0; i < count; i++) {
        struct kvx_mem *m = engine->mems[i];
        entries[i] = (kvx_wire_mem_entry_t){.addr = m->addr,
                                            .len = m->len,
                                            .tag = m->tag,
                                            .mem_type = (uint8_t)m->type,
                                            .access = (uint8_t)m->access};
    }
    pthread_mutex_unlock(&engine->lock);
    *entries_p = entries;
    *count_p = count;
    return KVX_OK;
}

/* Is [addr, addr+len) inside the table, allowing end-to-end neighbours? */
static int table_covers(const kvx_wire_mem_entry_t *t, uint32_t n, uint64_t addr, uint64_t len,
                        int write, const uint64_t *tag)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t[mid].addr + t[mid].len <= addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    uint64_t covered = addr, end = addr + len;
    for (uint32_t i = lo; i < n && t[i].addr <= covered && covered < end; i++) {
        if ((write && t[i].access == KVX_MEM_ACCESS_READ_ONLY) ||
            (tag != NULL && t[i].tag != *tag)) {
            return 0;
        }
        covered = t[i].addr + t[i].len;
    }
    return covered >= end;
}

/* Index of the first descriptor the cached table does not cover, or count. */
static size_t first_uncovered(kvx_peer_t *peer, kvx_op_t op, const kvx_xfer_desc_t *descs,
                              size_t count, const uint64_t *tag)
{
    if (!peer->rtable_valid) {
        return 0;
    }
    for (size_t i = 0; i < count; i++) {
        if (descs[i].remote_addr + descs[i].length < descs[i].remote_addr ||
            !table_covers(peer->rtable, peer->rcount, descs[i].remote_addr, descs[i].length,
                          op == KVX_OP_WRITE, tag)) {
            return i;
        }
    }
    return count;
}

kvx_status_t kvx_mem_check_remote(kvx_engine_t *engine, kvx_peer_t *peer, kvx_tp_conn_t *conn,
                                  kvx_op_t op, const kvx_xfer_desc_t *descs, size_t count,
                                  const uint64_t *tag, uint64_t deadline_ns)
{
    pthread_mutex_lock(&engine->lock);
    size_t bad = first_uncovered(peer, op, descs, count, tag);
    pthread_mutex_unlock(&engine->lock);
    if (bad == count) {
        return KVX_OK;
    }
    /* The cache may predate a registration the remote made since: ask it. */
    kvx_tp_op_t query = {.kind = KVX_TP_OP_MEM_QUERY, .deadline_ns = deadline_ns};
    kvx_status_t status = kvx_engine_run_op(engine, conn, &query);
    if (status != KVX_OK) {
        free(query.mem_entries);
        return KVX_FAIL(status, "engine %s: memory query to %s failed", engine->name, peer->name);
    }
    pthread_mutex_lock(&engine->lock);
    if (peer->conn == conn) {
        free(peer->rtable);
        peer->rtable = query.mem_entries;
        peer->rcount = query.mem_count;
        peer->rtable_valid = 1;
        query.mem_entries = NULL;
        bad = first_uncovered(peer, op, descs, count, tag);
    } else {
        status = KVX_FAIL(KVX_ERR_CONNECTION_LOST, "engine %s: link to %s replaced", engine->name,
                          peer->name);
    }
    pthread_mutex_unlock(&engine->lock);
    free(query.mem_entries);
    if (status == KVX_OK && bad < count) {
        status = KVX_FAIL(KVX_ERR_REMOTE_ACCESS,
                          "descriptor %zu: remote range 0x%llx+%zu is not inside memory %s "
                          "registered%s",
                          bad, (unsigned long long)descs[bad].remote_addr, descs[bad].length,
                          peer->name, op == KVX_OP_WRITE ? " read-write" : "");
    }
    return status;
}
