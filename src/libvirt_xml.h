/* --import --libvirt-xml: a libvirt domain XML's <cputune>, <memoryBacking> and name turned into
 * the launcher keys of an imported definition; the only libxml2 user. */
#pragma once

#include <stddef.h>

#include "error.h"
#include "import.h"

/* Largest domain XML we read (libvirt's own are a few KiB). */
#define LIBVIRT_XML_MAX_BYTES (4 << 20)

/* Maps the domain XML text (`path` names it in messages) to launcher keys. *ret_warnings is a
 * NULL-terminated list (never NULL) of every setting of the domain the launcher cannot express
 * and the qemu command line does not carry, each saying why; nothing is dropped silently.
 * *ret_name is the domain's <name>. Fails with -EINVAL and "PATH:LINE:COL: message" for XML that
 * does not parse, "PATH:LINE: message" for one that is not a <domain> or holds an attribute
 * libvirt itself would refuse. */
int libvirt_xml_parse(const char *path, const char *text, size_t len, struct import_launcher *ret,
		      char **ret_name, char ***ret_warnings, struct ql_error *err);

/* The same for a file (at most LIBVIRT_XML_MAX_BYTES). */
int libvirt_xml_load(const char *path, struct import_launcher *ret, char **ret_name,
		     char ***ret_warnings, struct ql_error *err);
