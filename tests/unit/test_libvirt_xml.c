/* Unit tests of --libvirt-xml: each libvirt <cputune>/<memoryBacking> shape maps to the launcher
 * keys it can be expressed with, or to a warning naming it; the domain XMLs under
 * tests/data/libvirt/ import into definitions the parser accepts with the expected keys and the
 * qemu argv unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cmdline.h"
#include "cpulist.h"
#include "definition.h"
#include "import.h"
#include "libvirt_xml.h"

struct mapped {
	struct import_launcher l;
	char *name;
	char **warnings;
};

static void mapped_done(struct mapped *m)
{
	import_launcher_done(&m->l);
	free(m->name);
	strv_free(m->warnings);
}

static void map_ok(const char *xml, struct mapped *m)
{
	struct ql_error err = {0};
	*m = (struct mapped){0};
	if (libvirt_xml_parse("t.xml", xml, strlen(xml), &m->l, &m->name, &m->warnings, &err) < 0)
		fail_msg("%s", err.msg);
	assert_non_null(m->warnings);
}

static void map_fails(const char *xml, const char *msg_part)
{
	struct ql_error err = {0};
	struct mapped m = {0};
	assert_int_equal(
	    libvirt_xml_parse("t.xml", xml, strlen(xml), &m.l, &m.name, &m.warnings, &err),
	    -EINVAL);
	if (!strstr(err.msg, msg_part))
		fail_msg("error `%s` does not say `%s`", err.msg, msg_part);
	assert_null(m.name);
	ql_error_clear(&err);
}

/* Exactly one warning holds `part`. */
static void warned(const struct mapped *m, const char *part)
{
	size_t n = 0;
	for (char **w = m->warnings; *w; w++)
		n += strstr(*w, part) != NULL;
	if (n != 1) {
		for (char **w = m->warnings; *w; w++)
			print_message("# %s\n", *w);
		fail_msg("%zu warnings say `%s`, want 1", n, part);
	}
}

#define DOMAIN(vcpus, body)                                                                        \
	"<domain type='kvm'><name>vm</name><vcpu>" vcpus "</vcpu>" body "</domain>"

static void test_vcpupin_emulatorpin(void **state)
{
	struct mapped m;
	map_ok(DOMAIN("4", "<cputune><vcpupin vcpu='1' cpuset='3'/><vcpupin vcpu='0' cpuset='2'/>"
			   "<vcpupin vcpu='2' cpuset='6'/><vcpupin vcpu='3' cpuset='7'/>"
			   "<emulatorpin cpuset='0-3,^2,^3,8'/></cputune>"),
	       &m);
	assert_string_equal(m.name, "vm");
	assert_int_equal(m.l.n_pins, 4);
	assert_int_equal(m.l.pins[0], 2);
	assert_int_equal(m.l.pins[1], 3);
	assert_int_equal(m.l.pins[2], 6);
	assert_int_equal(m.l.pins[3], 7);
	assert_string_equal(m.l.emulator_cpus, "0-1,8");
	assert_null(m.l.scheduler);
	assert_false(m.l.rlimit_memlock);
	assert_null(m.warnings[0]);
	mapped_done(&m);
}

/* libvirt moves only the emulator threads to <emulatorpin>; without vcpu_pinning the launcher
 * would put the vCPUs there too */
static void test_emulatorpin_without_vcpupin(void **state)
{
	struct mapped m;
	map_ok(DOMAIN("2", "<cputune><emulatorpin cpuset='0'/></cputune>"), &m);
	assert_null(m.l.emulator_cpus);
	assert_int_equal(m.l.n_pins, 0);
	warned(&m, "<emulatorpin cpuset='0'> not imported: no vCPU is pinned");
	assert_int_equal(strv_length(m.warnings), 1);
	mapped_done(&m);

	/* a pin that does not import (vCPU 0 unpinned) leaves no vcpu_pinning either */
	map_ok(DOMAIN("2", "<cputune><vcpupin vcpu='1' cpuset='1'/><emulatorpin cpuset='0'/>"
			   "</cputune>"),
	       &m);
	assert_null(m.l.emulator_cpus);
	warned(&m, "<emulatorpin cpuset='0'> not imported");
	mapped_done(&m);
}

/* libvirt's cpuset items apply left to right; `^N-M` and empty items are refused */
static void test_cpuset_syntax(void **state)
{
	static const struct {
		const char *cpuset, *want;
	} ok[] = {{"^1,0-1", "0-1"},	   {"0-3,^1,^2", "0,3"}, {"0-2,^1,1", "0-2"},
		  {" 0 - 2 , ^1 ", "0,2"}, {"1,", "1"},		 {"4", "4"}};
	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		char xml[256];
		snprintf(xml, sizeof(xml),
			 DOMAIN("1", "<cputune><vcpupin vcpu='0' cpuset='9'/><emulatorpin "
				     "cpuset='%s'/></cputune>"),
			 ok[i].cpuset);
		struct mapped m;
		map_ok(xml, &m);
		if (!m.l.emulator_cpus || strcmp(m.l.emulator_cpus, ok[i].want) != 0)
			fail_msg("cpuset '%s' gave %s, want %s", ok[i].cpuset,
				 m.l.emulator_cpus ? m.l.emulator_cpus : "nothing", ok[i].want);
		mapped_done(&m);
	}
	map_fails(DOMAIN("1", "<cputune><emulatorpin cpuset='0-3,^1-2'/></cputune>"),
		  "t.xml:1: <emulatorpin cpuset='0-3,^1-2'>: libvirt refuses a range after `^`");
	static const char *const bad[] = {"1,,2", "", " ", ",1", "1-", "3-1", "^", "1 2", "-1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char xml[256], msg[128];
		snprintf(xml, sizeof(xml),
			 DOMAIN("1", "<cputune><emulatorpin cpuset='%s'/></cputune>"), bad[i]);
		snprintf(msg, sizeof(msg), "t.xml:1: <emulatorpin cpuset='%s'>: not a CPU list",
			 bad[i]);
		map_fails(xml, msg);
	}
}

static void test_pins_that_do_not_map(void **state)
{
	struct mapped m;
	/* vCPU 1 on two CPUs, vCPU 2 then cannot follow in the flat list */
	map_ok(DOMAIN("3", "<cputune><vcpupin vcpu='0' cpuset='2'/><vcpupin vcpu='1' cpuset='3-4'/>"
			   "<vcpupin vcpu='2' cpuset='5'/></cputune>"),
	       &m);
	assert_int_equal(m.l.n_pins, 1);
	assert_int_equal(m.l.pins[0], 2);
	warned(&m, "<vcpupin vcpu='1' cpuset='3-4'> not imported");
	warned(&m, "<vcpupin vcpu='2' cpuset='5'> not imported: vCPU 1 before it is not pinned");
	assert_int_equal(strv_length(m.warnings), 2);
	mapped_done(&m);

	/* pins of vCPUs qemu does not start (hot-pluggable ones) would stop the VM */
	map_ok("<domain><name>a</name><vcpu current='2'>4</vcpu><cputune>"
	       "<vcpupin vcpu='0' cpuset='1'/><vcpupin vcpu='1' cpuset='2'/>"
	       "<vcpupin vcpu='2' cpuset='3'/><vcpupin vcpu='3' cpuset='4'/></cputune></domain>",
	       &m);
	assert_int_equal(m.l.n_pins, 2);
	assert_int_equal(m.l.pins[1], 2);
	warned(&m, "<vcpupin vcpu='2' cpuset='3'> not imported: qemu starts 2 vCPUs");
	warned(&m, "<vcpupin vcpu='3' cpuset='4'> not imported: qemu starts 2 vCPUs");
	warned(&m, "<vcpu current='2'>4</vcpu>");
	mapped_done(&m);

	map_ok(DOMAIN("2", ""), &m);
	assert_int_equal(m.l.n_pins, 0);
	assert_null(m.warnings[0]);
	mapped_done(&m);

	/* <vcpu cpuset> is a default for vCPUs without vcpupin, and the emulator's mask without
	 * <emulatorpin>: with every vCPU pinned it is emulator_pinning */
	map_ok("<domain><name>a</name><vcpu cpuset='1-3'>1</vcpu><cputune><vcpupin vcpu='0' "
	       "cpuset='1'/></cputune></domain>",
	       &m);
	assert_string_equal(m.l.emulator_cpus, "1-3");
	assert_null(m.warnings[0]);
	mapped_done(&m);
	/* ... even where the launcher cannot take the pin, which then leaves no vcpu_pinning:
	 * item 1's rule */
	map_ok("<domain><name>a</name><vcpu cpuset='1-3'>1</vcpu><cputune><vcpupin vcpu='0' "
	       "cpuset='1-2'/></cputune></domain>",
	       &m);
	assert_null(m.l.emulator_cpus);
	warned(&m, "<vcpu cpuset='1-3'> not imported: no vCPU is pinned");
	assert_int_equal(strv_length(m.warnings), 2);
	mapped_done(&m);
	/* with <emulatorpin> it still places the I/O threads without <iothreadpin> */
	map_ok("<domain><name>a</name><vcpu cpuset='1-3'>1</vcpu><iothreads>2</iothreads><cputune>"
	       "<vcpupin vcpu='0' cpuset='1'/><emulatorpin cpuset='0'/>"
	       "<iothreadpin iothread='1' cpuset='0'/></cputune></domain>",
	       &m);
	assert_string_equal(m.l.emulator_cpus, "0");
	warned(&m, "<vcpu cpuset='1-3'> not imported: with <emulatorpin> it places only the I/O");
	assert_int_equal(strv_length(m.warnings), 1);
	mapped_done(&m);
	map_ok("<domain><name>a</name><vcpu cpuset='1-3'>1</vcpu><iothreads>1</iothreads><cputune>"
	       "<vcpupin vcpu='0' cpuset='1'/><emulatorpin cpuset='0'/>"
	       "<iothreadpin iothread='1' cpuset='0'/></cputune></domain>",
	       &m);
	assert_null(m.warnings[0]);
	mapped_done(&m);
	/* numad */
	map_ok("<domain><name>a</name><vcpu placement='auto'>1</vcpu></domain>", &m);
	warned(&m, "<vcpu placement='auto'> not imported");
	mapped_done(&m);
	map_ok("<domain><name>a</name><vcpu cpuset='1-3'>2</vcpu><cputune><vcpupin vcpu='0' "
	       "cpuset='1'/></cputune></domain>",
	       &m);
	warned(&m, "<vcpu cpuset='1-3'> not imported");
	mapped_done(&m);
}

static void test_iothreadpin_and_others_warn(void **state)
{
	struct mapped m;
	map_ok(DOMAIN("1", "<iothreads>2</iothreads><cputune><vcpupin vcpu='0' cpuset='1'/>"
			   "<iothreadpin iothread='1' cpuset='0'/><iothreadpin iothread='2' "
			   "cpuset='0'/><shares>2048</shares><period>1000</period>"
			   "<emulatorsched scheduler='fifo' priority='2'/>"
			   "<iothreadsched iothreads='1' scheduler='batch'/></cputune>"),
	       &m);
	assert_int_equal(m.l.n_pins, 1);
	/* iothreadpin maps to iothread_pinning with libvirt's qemu ids */
	assert_int_equal(strv_length(m.l.io_ids), 2);
	assert_string_equal(m.l.io_ids[0], "iothread1");
	assert_string_equal(m.l.io_cpus[0], "0");
	assert_string_equal(m.l.io_ids[1], "iothread2");
	warned(&m, "<cputune><shares> not imported");
	warned(&m, "<cputune><period> not imported");
	warned(&m, "<emulatorsched scheduler='fifo'> not imported");
	warned(&m, "<iothreadsched> batch for I/O thread(s) 1 not imported: qemu-launcher's "
		   "`iothread_scheduler` applies to exactly the I/O threads of iothread_pinning, "
		   "and this domain schedules other I/O threads than it pins");
	assert_int_equal(strv_length(m.warnings), 4);
	/* every warning names the file and the line */
	for (char **w = m.warnings; *w; w++)
		assert_true(strncmp(*w, "t.xml:1: ", 9) == 0);
	mapped_done(&m);
}

/* the launcher keeps I/O threads off the vCPUs' CPUs and inside emulator_pinning (--check
 * refuses anything else): the import makes the domain's iothreadpin fit */
static void test_iothreadpin_made_to_fit(void **state)
{
	struct mapped m;
	map_ok(DOMAIN("1", "<cputune><vcpupin vcpu='0' cpuset='2'/><emulatorpin cpuset='0'/>"
			   "<iothreadpin iothread='1' cpuset='1'/></cputune>"),
	       &m);
	assert_string_equal(m.l.emulator_cpus, "0-1");
	assert_string_equal(m.l.io_cpus[0], "1");
	warned(&m, "<iothreadpin iothread='1' cpuset='1'>: CPU(s) 1 added to emulator_pinning");
	assert_int_equal(strv_length(m.warnings), 1);
	mapped_done(&m);

	/* a pinned vCPU's CPU is taken out; nothing left: no pin */
	map_ok(DOMAIN("2", "<cputune><vcpupin vcpu='0' cpuset='2'/><vcpupin vcpu='1' cpuset='3'/>"
			   "<emulatorpin cpuset='0'/><iothreadpin iothread='1' cpuset='0,2'/>"
			   "<iothreadpin iothread='2' cpuset='2-3'/></cputune>"),
	       &m);
	assert_string_equal(m.l.emulator_cpus, "0");
	assert_int_equal(strv_length(m.l.io_ids), 1);
	assert_string_equal(m.l.io_ids[0], "iothread1");
	assert_string_equal(m.l.io_cpus[0], "0");
	warned(&m,
	       "<iothreadpin iothread='1' cpuset='0,2'>: CPU(s) 2 left out of iothread_pinning");
	warned(&m, "<iothreadpin iothread='2' cpuset='2-3'> not imported");
	assert_int_equal(strv_length(m.warnings), 2);
	mapped_done(&m);
}

/* <iothreadsched> over exactly the pinned I/O threads: iothread_scheduler/iothread_priority */
static void test_iothreadsched(void **state)
{
	struct mapped m;
	map_ok(DOMAIN("1",
		      "<cputune><vcpupin vcpu='0' cpuset='1'/>"
		      "<iothreadpin iothread='1' cpuset='0'/><iothreadpin iothread='2' cpuset='0'/>"
		      "<iothreadsched iothreads='1' scheduler='fifo' priority='5'/>"
		      "<iothreadsched iothreads='2' scheduler='fifo' priority='5'/></cputune>"),
	       &m);
	assert_null(m.warnings[0]);
	assert_string_equal(m.l.io_scheduler, "fifo");
	assert_true(m.l.has_io_priority);
	assert_int_equal(m.l.io_priority, 5);
	/* the definition the import writes loads with them */
	char *argv[] = {"qemu", "-object", "iothread,id=iothread1", "-object",
			"iothread,id=iothread2"};
	_cleanup_free_ char *yaml = NULL;
	_cleanup_strv_free_ char **w = NULL;
	struct ql_error err = {0};
	assert_int_equal(import_command_line_with(argv, 5, &m.l, &yaml, &w, &err), 0);
	_cleanup_definition_ struct definition *d = NULL;
	if (definition_parse("t.yml", yaml, strlen(yaml), &d, &err) < 0)
		fail_msg("%s\n%s", err.msg, yaml);
	assert_int_equal(d->iothread_scheduler, QL_SCHED_FIFO);
	assert_int_equal(d->iothread_priority, 5);
	mapped_done(&m);

	/* an I/O thread that is not pinned: the launcher would not schedule it */
	map_ok(DOMAIN("1", "<cputune><iothreadsched iothreads='1' scheduler='batch'/></cputune>"),
	       &m);
	assert_null(m.l.io_scheduler);
	warned(&m, "<iothreadsched> batch for I/O thread(s) 1 not imported");
	warned(&m, "no I/O thread is pinned");
	mapped_done(&m);

	/* a pin left out (on the vCPU's CPU) is not scheduled either */
	map_ok(DOMAIN("1",
		      "<cputune><vcpupin vcpu='0' cpuset='1'/>"
		      "<iothreadpin iothread='1' cpuset='0'/><iothreadpin iothread='2' cpuset='1'/>"
		      "<iothreadsched iothreads='1-2' scheduler='rr' priority='3'/></cputune>"),
	       &m);
	assert_null(m.l.io_scheduler);
	warned(&m, "<iothreadsched> rr 3 for I/O thread(s) 1-2 not imported");
	mapped_done(&m);

	map_fails(DOMAIN("1", "<cputune><iothreadsched scheduler='batch'/></cputune>"),
		  "<iothreadsched> has no iothreads attribute");
	map_fails(DOMAIN("1", "<cputune><iothreadsched iothreads='1' scheduler='rr'/></cputune>"),
		  "<iothreadsched scheduler='rr'> needs a priority 1..99");
}

static void test_vcpusched(void **state)
{
	struct mapped m;
	/* every vCPU, no pins: maps */
	map_ok(DOMAIN("2", "<cputune><vcpusched scheduler='fifo' priority='10'/></cputune>"), &m);
	assert_string_equal(m.l.scheduler, "fifo");
	assert_true(m.l.has_priority);
	assert_int_equal(m.l.priority, 10);
	assert_null(m.warnings[0]);
	mapped_done(&m);

	/* split over two elements with the same policy, all pinned: maps */
	map_ok(DOMAIN("2", "<cputune><vcpupin vcpu='0' cpuset='2'/><vcpupin vcpu='1' cpuset='3'/>"
			   "<vcpusched vcpus='0' scheduler='rr' priority='5'/>"
			   "<vcpusched vcpus='1' scheduler='rr' priority='5'/></cputune>"),
	       &m);
	assert_string_equal(m.l.scheduler, "rr");
	assert_int_equal(m.l.priority, 5);
	mapped_done(&m);

	/* batch takes no priority */
	map_ok(DOMAIN("1", "<cputune><vcpusched vcpus='0' scheduler='batch'/></cputune>"), &m);
	assert_string_equal(m.l.scheduler, "batch");
	assert_false(m.l.has_priority);
	mapped_done(&m);

	/* the RT layout with a housekeeping vCPU 0: cannot be expressed */
	map_ok(DOMAIN("4", "<cputune><vcpusched vcpus='1-3' scheduler='fifo' priority='1'/>"
			   "</cputune>"),
	       &m);
	assert_null(m.l.scheduler);
	warned(&m, "<vcpusched> fifo 1 for vCPU(s) 1-3 not imported");
	mapped_done(&m);

	/* two policies: both reported */
	map_ok(DOMAIN("2", "<cputune><vcpusched vcpus='0' scheduler='fifo' priority='1'/>"
			   "<vcpusched vcpus='1' scheduler='fifo' priority='2'/></cputune>"),
	       &m);
	assert_null(m.l.scheduler);
	assert_int_equal(strv_length(m.warnings), 2);
	warned(&m, "fifo 1 for vCPU(s) 0 not imported");
	warned(&m, "fifo 2 for vCPU(s) 1 not imported");
	mapped_done(&m);

	/* pins on vCPU 0 only: the launcher would schedule only vCPU 0, the domain schedules both
	 */
	map_ok(DOMAIN("2", "<cputune><vcpupin vcpu='0' cpuset='2'/>"
			   "<vcpusched scheduler='fifo' priority='1'/></cputune>"),
	       &m);
	assert_null(m.l.scheduler);
	warned(&m, "applies to the pinned vCPUs (0)");
	mapped_done(&m);
}

static void test_memory_backing(void **state)
{
	struct mapped m;
	map_ok(DOMAIN("1", "<memoryBacking><hugepages><page size='2048' unit='KiB'/>"
			   "<page size='1' unit='G' nodeset='0'/></hugepages><locked/>"
			   "<nosharepages/><source type='memfd'/></memoryBacking>"
			   "<numatune><memory mode='strict' nodeset='0'/></numatune>"),
	       &m);
	assert_true(m.l.rlimit_memlock);
	warned(&m, "<hugepages> (2048 KiB, 1 G pages): the qemu command line's memory backend "
		   "uses them; qemu-launcher's `hugepages` key");
	warned(&m, "<memoryBacking><nosharepages> not imported");
	warned(&m, "<memoryBacking><source> not imported");
	warned(&m, "<numatune> not imported");
	assert_int_equal(strv_length(m.warnings), 4);
	mapped_done(&m);
}

/* every child of <domain> is imported, carried by the qemu command line, or warned about */
static void test_other_settings(void **state)
{
	struct mapped m;
	map_ok("<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>a</name>"
	       "<uuid>x</uuid><title>t</title><metadata><x/></metadata>"
	       "<memory unit='GiB'>1</memory><currentMemory unit='MiB'>1024</currentMemory>"
	       "<vcpu>1</vcpu><os/><features/><cpu/><clock/><on_poweroff>destroy</on_poweroff>"
	       "<on_reboot>restart</on_reboot><devices/><qemu:commandline/></domain>",
	       &m);
	assert_null(m.warnings[0]);
	mapped_done(&m);

	map_ok(
	    "<domain><name>a</name><memory>2097152</memory><currentMemory>1048576</currentMemory>"
	    "<vcpu>1</vcpu><memtune><hard_limit>1</hard_limit></memtune>"
	    "<blkiotune><weight>800</weight></blkiotune><seclabel type='dynamic'/>"
	    "<resource><partition>/machine</partition></resource><perf/>"
	    "<on_crash>coredump-restart</on_crash><x:y xmlns:x='urn:x'/></domain>",
	    &m);
	warned(&m, "<currentMemory> not imported");
	warned(&m, "<memtune> not imported");
	warned(&m, "<blkiotune> not imported");
	warned(&m, "<seclabel> not imported");
	warned(&m, "<resource> not imported");
	warned(&m, "<perf> not imported");
	warned(&m, "<on_crash>coredump-restart</on_crash> not imported");
	warned(&m, "<y> not imported");
	assert_int_equal(strv_length(m.warnings), 8);
	mapped_done(&m);
}

static void test_names(void **state)
{
	struct mapped m;
	map_ok("<domain><name>win 10</name><vcpu>1</vcpu></domain>", &m);
	assert_string_equal(m.name, "win 10");
	warned(&m, "the domain name `win 10` is not a qemu-launcher NAME");
	assert_string_equal(m.l.source, "libvirt domain `win 10`");
	mapped_done(&m);
	/* a newline in the name cannot break out of the YAML comment it is shown in */
	map_ok("<domain><name>a&#10;launcher: x</name><vcpu>1</vcpu></domain>", &m);
	assert_null(strchr(m.l.source, '\n'));
	mapped_done(&m);
}

static void test_refusals(void **state)
{
	/* libxml2's column too */
	map_fails("<domain><name>a</name>", "t.xml:1:23: ");
	map_fails("<domain>\n <name>a</name>\n <vcpu>1</vcpu>\n</domian>", "t.xml:4:10: ");
	map_fails("<network><name>a</name></network>", "not a libvirt domain XML");
	map_fails("<domain><vcpu>1</vcpu></domain>", "no <name>");
	map_fails("<domain><name>a</name></domain>", "<vcpu>");
	map_fails("<domain><name>a</name><vcpu>0</vcpu></domain>", "<vcpu>");
	map_fails(DOMAIN("2", "<cputune><vcpupin vcpu='2' cpuset='1'/></cputune>"),
		  "has 2 vCPU(s)");
	map_fails(DOMAIN("2", "<cputune><vcpupin vcpu='x' cpuset='1'/></cputune>"), "not a vCPU");
	map_fails(DOMAIN("2", "<cputune><vcpupin vcpu='0' cpuset='a'/></cputune>"),
		  "not a CPU list");
	map_fails(DOMAIN("2", "<cputune><vcpupin vcpu='0'/></cputune>"), "no cpuset attribute");
	map_fails(DOMAIN("2", "<cputune><emulatorpin cpuset='1,^1'/></cputune>"), "no CPU left");
	map_fails(DOMAIN("2", "<cputune><vcpusched scheduler='deadline'/></cputune>"),
		  "libvirt knows batch");
	map_fails(DOMAIN("2", "<cputune><vcpusched scheduler='fifo'/></cputune>"),
		  "priority 1..99");
	map_fails(DOMAIN("2", "<cputune><vcpusched scheduler='fifo' priority='100'/></cputune>"),
		  "priority 1..99");
	/* an external entity is neither fetched nor expanded */
	struct mapped m;
	map_ok("<!DOCTYPE domain [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
	       "<domain><name>a&x;</name><vcpu>1</vcpu></domain>",
	       &m);
	assert_null(strstr(m.name, "root"));
	mapped_done(&m);
	/* an internal one is expanded, as qemu-launcher(1) says */
	map_ok("<!DOCTYPE domain [<!ENTITY n 'vm'>]><domain><name>&n;x</name><vcpu>1</vcpu>"
	       "</domain>",
	       &m);
	assert_string_equal(m.name, "vmx");
	mapped_done(&m);
	/* loops and exponential expansion are refused */
	map_fails("<!DOCTYPE domain [<!ENTITY a '&b;'><!ENTITY b '&a;'>]><domain><name>&a;</name>"
		  "<vcpu>1</vcpu></domain>",
		  "t.xml:1:");
	char laughs[2048] = "<!DOCTYPE domain [<!ENTITY l0 'lol'>";
	for (int i = 1; i < 10; i++) {
		char e[160];
		snprintf(e, sizeof(e), "<!ENTITY l%d '", i);
		for (int k = 0; k < 10; k++)
			snprintf(e + strlen(e), sizeof(e) - strlen(e), "&l%d;", i - 1);
		strcat(e, "'>");
		strcat(laughs, e);
	}
	strcat(laughs, "]><domain><name>&l9;</name><vcpu>1</vcpu></domain>");
	map_fails(laughs, "t.xml:1:");
}

/* line numbers go past libxml2's 16-bit 65535 */
static void test_big_line_numbers(void **state)
{
	size_t blank = 70000;
	const char *head = "<domain><name>a</name><vcpu>1</vcpu>",
		   *tail = "<perf/><blkiotune/>\n  <memtune/>\n  <cputune><vcpupin vcpu='0' "
			   "cpuset='1,,2'/></cputune></domain>";
	char *xml = malloc(strlen(head) + blank + strlen(tail) + 1);
	assert_non_null(xml);
	strcpy(xml, head);
	memset(xml + strlen(head), '\n', blank);
	strcpy(xml + strlen(head) + blank, tail);
	map_fails(xml, "t.xml:70003: <vcpupin cpuset='1,,2'>: not a CPU list");
	/* without the bad pin: the warnings */
	strcpy(strstr(xml, "<cputune>"), "</domain>");
	struct mapped m;
	map_ok(xml, &m);
	warned(&m, "t.xml:70001: <perf> not imported");
	warned(&m, "t.xml:70001: <blkiotune> not imported");
	warned(&m, "t.xml:70002: <memtune> not imported");
	mapped_done(&m);
	free(xml);
}

/* --- the domain XMLs of tests/data/libvirt with their argv: import, parse, build --- */

static char **read_args(const char *path)
{
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	char **v = calloc(1, sizeof(char *));
	size_t n = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) >= 0) {
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (line[0] == '#')
			continue;
		v = reallocarray(v, n + 2, sizeof(char *));
		assert_non_null(v);
		v[n++] = strdup(line);
		v[n] = NULL;
	}
	free(line);
	fclose(f);
	return v;
}

static struct definition *import_data(const char *stem, char ***ret_warnings)
{
	char xml[512], args[512];
	snprintf(xml, sizeof(xml), "%s/libvirt/%s.xml", TEST_DATA_DIR, stem);
	snprintf(args, sizeof(args), "%s/libvirt/%s.args", TEST_DATA_DIR, stem);
	struct ql_error err = {0};
	struct import_launcher l = {0};
	_cleanup_free_ char *name = NULL, *yaml = NULL;
	_cleanup_strv_free_ char **argv = read_args(args), **w2 = NULL;
	if (libvirt_xml_load(xml, &l, &name, ret_warnings, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(import_command_line_with(argv, strv_length(argv), &l, &yaml, &w2, &err),
			 0);
	import_launcher_done(&l);
	struct definition *d = NULL;
	if (definition_parse("t.yml", yaml, strlen(yaml), &d, &err) < 0)
		fail_msg("%s: %s\n%s", stem, err.msg, yaml);
	_cleanup_free_ char **built = NULL;
	assert_int_equal(cmdline_build(d, &built, &err), 0);
	assert_int_equal(strv_length(built), strv_length(argv));
	for (size_t i = 0; argv[i]; i++)
		assert_string_equal(built[i], argv[i]);
	return d;
}

static void assert_pins(const struct definition *d, const int *want, size_t n)
{
	assert_int_equal(d->n_pins, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(d->pins[i].index, (int)i);
		assert_int_equal(d->pins[i].host_cpu, want[i]);
	}
}

static void test_data_vfio_gaming(void **state)
{
	_cleanup_strv_free_ char **w = NULL;
	_cleanup_definition_ struct definition *d = import_data("vfio-gaming", &w);
	assert_pins(d, (const int[]){2, 10, 3, 11, 4, 12, 5, 13}, 8);
	_cleanup_free_ char *emu = cpu_list_format(d->emulator_cpus);
	assert_string_equal(emu, "0-1,8-9");
	assert_int_equal(d->scheduler, QL_SCHED_UNSET);
	assert_int_equal(d->memlock, QL_MEMLOCK_UNCHANGED);
	assert_int_equal(strv_length(w), 0);
	assert_int_equal(d->n_iothread_pins, 1);
	assert_string_equal(d->iothread_pins[0].id, "iothread1");
	_cleanup_free_ char *io = cpu_list_format(d->iothread_pins[0].cpus);
	assert_string_equal(io, "0-1,8-9");
}

static void test_data_realtime(void **state)
{
	_cleanup_strv_free_ char **w = NULL;
	_cleanup_definition_ struct definition *d = import_data("realtime", &w);
	assert_pins(d, (const int[]){2, 3, 4, 5}, 4);
	_cleanup_free_ char *emu = cpu_list_format(d->emulator_cpus);
	assert_string_equal(emu, "1");
	assert_int_equal(d->scheduler, QL_SCHED_FIFO);
	assert_int_equal(d->priority, 1);
	assert_int_equal(d->memlock, QL_MEMLOCK_UNLIMITED);
	assert_int_equal(strv_length(w), 2); /* emulatorsched, nosharepages */
}

static void test_data_hugepages(void **state)
{
	_cleanup_strv_free_ char **w = NULL;
	_cleanup_definition_ struct definition *d = import_data("hugepages", &w);
	assert_pins(d, (const int[]){4, 5}, 2);
	assert_null(d->emulator_cpus);
	assert_int_equal(d->scheduler, QL_SCHED_UNSET);
	assert_int_equal(d->memlock, QL_MEMLOCK_UNLIMITED);
	/* name, current, shares, vcpupin 4 (two CPUs), vcpu cpuset, vcpupin 3 (after a gap),
	 * vcpusched (part), hugepages, numatune */
	assert_int_equal(strv_length(w), 9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vcpupin_emulatorpin),
	    cmocka_unit_test(test_emulatorpin_without_vcpupin),
	    cmocka_unit_test(test_cpuset_syntax),
	    cmocka_unit_test(test_pins_that_do_not_map),
	    cmocka_unit_test(test_iothreadpin_and_others_warn),
	    cmocka_unit_test(test_iothreadpin_made_to_fit),
	    cmocka_unit_test(test_iothreadsched),
	    cmocka_unit_test(test_vcpusched),
	    cmocka_unit_test(test_memory_backing),
	    cmocka_unit_test(test_other_settings),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_big_line_numbers),
	    cmocka_unit_test(test_data_vfio_gaming),
	    cmocka_unit_test(test_data_realtime),
	    cmocka_unit_test(test_data_hugepages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
