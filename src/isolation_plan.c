/* Pure helpers on a struct isolation_plan, shared by the backends and their planners (neither
 * may call the facade). */
#include "isolation.h"

#include <errno.h>

#include "macro.h"

int isolation_plan_host_cpus(const struct isolation_plan *plan, struct cpu_list **ret,
			     struct ql_error *err)
{
	_cleanup_cpu_list_ struct cpu_list *cpus = cpu_list_new(0);
	if (!cpus)
		return ql_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < plan->n_vcpus; i++)
		if (cpu_list_add(cpus, plan->vcpus[i].host_cpu) < 0)
			return ql_error_set(err, ERANGE, "host CPU %u is out of range",
					    plan->vcpus[i].host_cpu);
	*ret = TAKE_PTR(cpus);
	return 0;
}
