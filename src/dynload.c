/* Libraries loaded on first use (see dynload.h). */
#include "dynload.h"

#include <dlfcn.h>
#include <errno.h>

int dynload(const char *soname, const char *needs, const char *const *names, size_t n, void **syms,
	    struct ql_error *err)
{
	/* RTLD_NOW: a missing function shows here, not as a crash in the middle of its use */
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return ql_error_set(err, ENOPKG, "%s: %s", needs, dlerror());
	for (size_t i = 0; i < n; i++)
		if (!(syms[i] = dlsym(h, names[i]))) {
			int r = ql_error_set(err, ENOPKG, "%s has no %s", soname, names[i]);
			dlclose(h);
			return r;
		}
	return 0;
}
