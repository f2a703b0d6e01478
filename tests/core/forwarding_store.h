#ifndef CREDBROKER_TESTS_CORE_FORWARDING_STORE_H_
#define CREDBROKER_TESTS_CORE_FORWARDING_STORE_H_

// The tests' failing, counting and instrumented stores derive from the
// broker's ForwardingStore.
#include "broker/store/forwarding_store.h"

#endif  // CREDBROKER_TESTS_CORE_FORWARDING_STORE_H_
