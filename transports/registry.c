/*
 * The compiled-in transports, in order of preference: an explicit list
 * (libfabric's ofi_prov.h), not constructor-registered, so that link order
 * and static linking cannot change what is available. meson defines
 * TUTTI_HAVE_<NAME> for each transport it builds. Same-host transports come
 * first: a peer gets the first transport, in this order, that is up on both
 * ranks and reaches it.
 */
#include <stddef.h>

#include "transport.h"

#ifdef TUTTI_HAVE_SHM
#include "shm/shm_ops.h"
#endif
#ifdef TUTTI_HAVE_UCX
#include "ucx/ucx_ops.h"
#endif
#ifdef TUTTI_HAVE_OFI
#include "ofi/ofi_ops.h"
#endif

const tt_transport_ops_t *const tutti__transports[] = {
#ifdef TUTTI_HAVE_SHM
    &tt_shm_ops,
#endif
#ifdef TUTTI_HAVE_UCX
    &tt_ucx_ops,
#endif
#ifdef TUTTI_HAVE_OFI
    &tt_ofi_ops,
#endif
    NULL,
};
