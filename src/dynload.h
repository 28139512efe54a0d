/* Libraries loaded on first use (libxml2 for --libvirt-xml, libfyaml for the YAML the fast
 * reader leaves): dlopen and every symbol resolved at once, a missing one named. */
#pragma once

#include <stddef.h>

#include "error.h"

/* Opens `soname` (RTLD_NOW | RTLD_LOCAL: setuid, the loader ignores LD_LIBRARY_PATH) and
 * resolves names[0..n) into syms. The library stays loaded for the process on success. On
 * failure, ENOPKG: "NEEDS: <dlerror>" when it cannot be opened, "SONAME has no SYMBOL". */
int dynload(const char *soname, const char *needs, const char *const *names, size_t n, void **syms,
	    struct ql_error *err);
