/*
 * The shared-memory transport's entry point, for transports/registry.c:
 * one ops table, tt_shm_ops (shm_init.c). Everything else of the
 * transport stays private to transports/shm/.
 */
#ifndef TUTTI_SHM_OPS_H
#define TUTTI_SHM_OPS_H

#include "transport.h"

extern const tt_transport_ops_t tt_shm_ops;

#endif /* TUTTI_SHM_OPS_H */
