/* The store conformance suite: drives any integ_store through its vtable
 * only and checks the contract of include/integrations/store.h.
 *
 * A backend's test calls store_conformance_run() with a factory that
 * returns fresh, empty store_data for every case (a new database or
 * schema). Each case calls store->open, runs, and calls store->close. The
 * suite prints "ok   conformance.NAME" or "FAIL conformance.NAME" per case
 * (details on stderr) and returns the number of failed cases. */
#ifndef STORE_CONFORMANCE_H
#define STORE_CONFORMANCE_H

#include "integrations/store.h"

int store_conformance_run(const integ_store *store, void *(*make_store_data)(void *arg),
                          void *arg);

#endif
