/* The `compartment` imports, as a C guest declares them (see the `wasm`
   module's documentation for what each does). Every call returns a WASI
   errno: 0 for success. */
#ifndef COMPARTMENT_H
#define COMPARTMENT_H

#include <stdint.h>
#include <string.h>

#define COMPARTMENT_IMPORT(name) \
    __attribute__((import_module("compartment"), import_name(name)))

COMPARTMENT_IMPORT("lookup")
int32_t compartment_lookup(const char *name, int32_t name_len, int32_t *handle);
COMPARTMENT_IMPORT("send")
int32_t compartment_send(int32_t handle, const void *message, int32_t len);
COMPARTMENT_IMPORT("recv")
int32_t compartment_recv(int32_t handle, void *buf, int32_t buf_len, int32_t *len);
COMPARTMENT_IMPORT("call")
int32_t compartment_call(int32_t handle, const void *request, int32_t request_len,
                         void *buf, int32_t buf_len, int32_t *len);
COMPARTMENT_IMPORT("cancelled")
int32_t compartment_cancelled(void);

/* The handle of the grant's field `name`, or -1. */
static inline int32_t compartment_handle(const char *name) {
    int32_t handle = -1;
    if (compartment_lookup(name, (int32_t)strlen(name), &handle) != 0) {
        return -1;
    }
    return handle;
}

/* Sends a NUL-terminated string. */
static inline int32_t compartment_say(int32_t handle, const char *text) {
    return compartment_send(handle, text, (int32_t)strlen(text));
}

#endif
