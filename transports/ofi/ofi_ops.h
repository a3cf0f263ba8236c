/* The ofi transport's operations table, for transports/registry.c. */
#ifndef TUTTI_OFI_OPS_H
#define TUTTI_OFI_OPS_H

#include "transport.h"

extern const tt_transport_ops_t tt_ofi_ops;

#endif
