/* The ucx transport's operations table, for transports/registry.c. */
#ifndef TUTTI_UCX_OPS_H
#define TUTTI_UCX_OPS_H

#include "transport.h"

extern const tt_transport_ops_t tt_ucx_ops;

#endif
