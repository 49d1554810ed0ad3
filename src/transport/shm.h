/*
 * The same-host data path. A target keeps a table of its registrations in a
 * memfd ("slots") and, for each linked initiator on the same host, a memfd of
 * per-slot pin counters. The initiator maps both through /proc/<pid>/fd and
 * copies with process_vm_readv/writev: the target's CPU does nothing.
 *
 * Safety against a registration being dropped while an initiator copies:
 * the initiator raises the slot's counter, then checks the slot's generation;
 * the target marks the generation dead, then checks every counter (both with
 * sequentially consistent atomics), so one of the two always sees the other.
 * Counters live per link, so a crashed initiator's pins vanish with its link.
 */
#ifndef KVX_TRANSPORT_SHM_H
#define KVX_TRANSPORT_SHM_H

#include <kvx/engine.h>
#include <stdint.h>
#include <sys/types.h>

/* Registrations the same-host path can serve (slot 0 is the header; the
 * rest fall back to tcp: the initiator finds no slot and sends frames). */
#define KVX_SHM_SLOTS 16384

typedef struct kvx_shm_table kvx_shm_table_t;
typedef struct kvx_shm_pins kvx_shm_pins_t;
typedef struct kvx_shm_link kvx_shm_link_t;

/* Target side. */
kvx_status_t kvx_shm_table_create(uint64_t instance, kvx_shm_table_t **table_p);
void kvx_shm_table_destroy(kvx_shm_table_t *table);
/* 0 when the table is full (that memory stays reachable over tcp only). */
/* @p memfd >= 0: the memory is that memfd of ours from @p memfd_off on;
 * peers then map it and copy with memcpy. */
uint32_t kvx_shm_table_add(kvx_shm_table_t *table, uint64_t addr, uint64_t len, uint64_t tag,
                           int read_only, int memfd, uint64_t memfd_off);
/* KVX_ERR_BUSY while an initiator holds a pin on the slot. */
kvx_status_t kvx_shm_table_remove(kvx_shm_table_t *table, uint32_t slot);
int kvx_shm_table_fd(const kvx_shm_table_t *table);
uint64_t kvx_shm_table_probe_addr(const kvx_shm_table_t *table);
kvx_status_t kvx_shm_pins_create(kvx_shm_table_t *table, kvx_shm_pins_t **pins_p);
/* The link closed: its pins still count for a grace period (a copy may be
 * running), then go. */
void kvx_shm_pins_release(kvx_shm_table_t *table, kvx_shm_pins_t *pins);
int kvx_shm_pins_fd(const kvx_shm_pins_t *pins);

/* Both sides: a hash of this boot (same value = same kernel instance). */
uint64_t kvx_shm_boot_id(void);

/* Initiator side. Opens the target's memfds and checks that CMA works. */
/* @p instance: the target's id from its HELLO_ACK; a table of any other
 * process is refused. */
kvx_status_t kvx_shm_link_open(pid_t pid, int table_fd, int pins_fd, uint64_t probe_addr,
                               uint64_t instance, kvx_shm_link_t **link_p);
void kvx_shm_link_close(kvx_shm_link_t *link);
/* Move the data of a READ or WRITE. Every range must lie in one live slot
 * (with @p tag if given, writable for a WRITE). */
kvx_status_t kvx_shm_link_xfer(kvx_shm_link_t *link, int write, const kvx_xfer_desc_t *descs,
                               size_t count, const uint64_t *tag);

#endif
