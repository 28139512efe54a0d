/* The value of one qemu option (`-object`, `-device`, `-machine`...) as the key=value parts qemu
 * reads from it: its own syntax (",," a literal comma, a bare word without "=") or, starting with
 * `{`, the JSON form (`-object {"qom-type": "memory-backend-ram", ...}`, as libvirt writes it).
 * Reads only what the launcher's checks need; qemu reports what is malformed. */
#pragma once

#include <stddef.h>

struct qemu_value {
	char **keys, **values; /* a bare word has value NULL */
	size_t n;
};

/* -EINVAL for a JSON form that is not a flat-enough object, -ENOMEM. */
int qemu_value_parse(const char *s, struct qemu_value *ret);
void qemu_value_done(struct qemu_value *v);

/* The value of key (the last one wins, as in qemu); NULL when absent or a bare word. */
const char *qemu_value_get(const struct qemu_value *v, const char *key);
/* The value of an option's implied key (-device's driver, -object's qom-type, -m's size): its
 * first bare word, else the key's value; NULL when neither. */
const char *qemu_value_implied(const struct qemu_value *v, const char *key);
