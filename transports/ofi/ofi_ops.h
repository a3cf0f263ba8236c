/*
 * The libfabric transport's entry point, for transports/registry.c: one
 * ops table, tt_ofi_ops (ofi_init.c). Everything else of the transport
 * stays private to transports/ofi/.
 */
#ifndef TUTTI_OFI_OPS_H
#define TUTTI_OFI_OPS_H

#include "transport.h"

extern const tt_transport_ops_t tt_ofi_ops;

#endif /* TUTTI_OFI_OPS_H */
