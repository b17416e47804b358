// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/test_discover.c - vhd/discover.c on replica folders built in a
 * scratch folder: both layouts, hidden and state folders, chains, name
 * collisions, broken files of every kind, and the time to scan 200 VMs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "discover.h"
#include "testutil.h"

struct fixture {
	char *dir;
};

/*
 * A scratch folder holding the templates: fix.vhdx, dyn.vhd (1 MiB, qemu),
 * and with tests/mkvhd.py c1.vhd over dyn.vhd.
 */
static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx || !(fx->dir = make_tmpdir()))
		return -1;
	if (sh("cd '%s' && mkdir t && cd t && head -c 1048576 /dev/urandom > r.raw && "
	       "qemu-img convert -f raw -O vhdx -o subformat=fixed r.raw fix.vhdx && "
	       "qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on r.raw dyn.vhd && "
	       "qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on r.raw dyn2.vhd && "
	       "python3 '%s/../mkvhd.py' diff dyn.vhd c1.vhd >/dev/null",
	       fx->dir, testdata()))
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	rm_tree(fx->dir);
	free(fx);
	return 0;
}

static const struct rfs_vm_desc *find_vm(const struct rfs_store_desc *s, const char *name)
{
	for (size_t i = 0; i < s->nvms; i++)
		if (strcmp(s->vms[i].name, name) == 0)
			return &s->vms[i];
	fail_msg("VM %s not found", name);
	return NULL;
}

static const struct rfs_disk_desc *find_disk(const struct rfs_vm_desc *vm, const char *name)
{
	for (size_t i = 0; i < vm->ndisks; i++)
		if (strcmp(vm->disks[i].name, name) == 0)
			return &vm->disks[i];
	fail_msg("VM %s: disk %s not found", vm->name, name);
	return NULL;
}

static void assert_ends_with(const char *s, const char *tail)
{
	size_t ls = strlen(s), lt = strlen(tail);

	if (ls < lt || strcmp(s + ls - lt, tail) != 0)
		fail_msg("\"%s\" does not end with \"%s\"", s, tail);
}

/* Plain layout: chains, hidden/state folders, collisions, sorting. */
static void test_plain_layout(void **state)
{
	struct fixture *fx = *state;
	const struct rfs_vm_desc *vm;
	const struct rfs_disk_desc *d;
	struct rfs_store_desc store;
	char root[4096], statedir[4200];

	snprintf(root, sizeof(root), "%s/r", fx->dir);
	snprintf(statedir, sizeof(statedir), "%s/state", root);
	assert_int_equal(sh("cd '%s' && mkdir -p r/vm-b r/vm-a r/.hidden r/.replicafs r/state "
			    "r/empty && cp t/fix.vhdx r/vm-b/sys.vhdx && "
			    "cp t/dyn.vhd t/c1.vhd r/vm-b/ && mv r/vm-b/c1.vhd r/vm-b/dyn-rp1.AVHD && "
			    "cp t/dyn2.vhd r/vm-a/sys.vhd && cp t/fix.vhdx r/vm-a/sys.vhdx && "
			    "cp t/fix.vhdx r/vm-a/notes.txt && cp t/fix.vhdx r/.hidden/x.vhdx && "
			    "cp t/fix.vhdx r/.replicafs/x.vhdx && cp t/fix.vhdx r/state/x.vhdx",
			    fx->dir),
			 0);
	assert_int_equal(rfs_discover(root, statedir, &store), 0);
	assert_int_equal(store.nvms, 3);
	assert_string_equal(store.vms[0].name, "empty");
	assert_string_equal(store.vms[1].name, "vm-a");
	assert_string_equal(store.vms[2].name, "vm-b");
	assert_int_equal(store.vms[0].ndisks, 0);

	vm = find_vm(&store, "vm-a");
	assert_false(vm->broken);
	assert_int_equal(vm->ndisks, 2);
	assert_string_equal(vm->disks[0].name, "sys.vhd");
	assert_string_equal(vm->disks[1].name, "sys.vhdx");
	assert_ends_with(vm->dir, "/r/vm-a");

	vm = find_vm(&store, "vm-b");
	assert_false(vm->broken);
	assert_int_equal(vm->ndisks, 2);
	d = find_disk(vm, "dyn");
	assert_false(d->broken);
	assert_int_equal(d->chain_len, 2);
	assert_ends_with(d->chain[0], "/r/vm-b/dyn-rp1.AVHD");
	assert_ends_with(d->chain[1], "/r/vm-b/dyn.vhd");
	assert_true(d->chain[0][0] == '/');
	d = find_disk(vm, "sys");
	assert_int_equal(d->chain_len, 1);
	rfs_store_desc_free(&store);

	/* a relative replica folder still gives absolute paths */
	assert_int_equal(chdir(fx->dir), 0);
	assert_int_equal(rfs_discover("r", NULL, &store), 0);
	assert_int_equal(store.nvms, 4); /* "state" is a VM when not the state folder */
	assert_true(store.vms[0].dir[0] == '/');
	rfs_store_desc_free(&store);
	assert_int_equal(chdir("/"), 0);

	assert_int_equal(rfs_discover("/nonexistent-rfs-dir", NULL, &store), -ENOENT);
}

/* Hyper-V Replica storage layout: the VMs are the folders under it. */
static void test_hyperv_layout(void **state)
{
	struct fixture *fx = *state;
	struct rfs_store_desc store;
	char root[4096];

	snprintf(root, sizeof(root), "%s/h", fx->dir);
	assert_int_equal(sh("cd '%s' && G='h/Hyper-V Replica/Virtual hard disks' && "
			    "mkdir -p \"$G/5F2A-GUID\" \"$G/1B00-GUID\" h/other && "
			    "cp t/fix.vhdx \"$G/5F2A-GUID/disk.vhdx\" && "
			    "cp t/dyn.vhd \"$G/1B00-GUID/a.vhd\" && cp t/fix.vhdx h/other/x.vhdx",
			    fx->dir),
			 0);
	assert_int_equal(rfs_discover(root, NULL, &store), 0);
	assert_int_equal(store.nvms, 2);
	assert_string_equal(store.vms[0].name, "1B00-GUID");
	assert_string_equal(store.vms[1].name, "5F2A-GUID");
	assert_string_equal(store.vms[1].disks[0].name, "disk");
	assert_ends_with(store.vms[1].disks[0].chain[0],
			 "/h/Hyper-V Replica/Virtual hard disks/5F2A-GUID/disk.vhdx");
	rfs_store_desc_free(&store);
}

static void assert_broken(const struct rfs_vm_desc *vm, const char *disk, const char *reason,
			  size_t chain_len)
{
	const struct rfs_disk_desc *d = find_disk(vm, disk);

	assert_true(d->broken);
	if (!strstr(d->reason, reason))
		fail_msg("disk %s: reason \"%s\" lacks \"%s\"", disk, d->reason, reason);
	assert_int_equal(d->chain_len, chain_len);
}

/* Broken files mark their disk and VM broken; the scan goes on. */
static void test_broken(void **state)
{
	struct fixture *fx = *state;
	const struct rfs_vm_desc *vm;
	struct rfs_store_desc store;
	char root[4096];

	snprintf(root, sizeof(root), "%s/b", fx->dir);
	/*
	 * orphan.avhd: missing parent; junk.vhdx: not an image; empty.vhd;
	 * trunc.vhd: footer gone; mism.avhd -> dyn2.vhd renamed dyn.vhd:
	 * identifier mismatch; la.vhd <-> lb.vhd: loop; self.vhd: its own parent.
	 */
	assert_int_equal(sh("cd '%s' && mkdir -p b/bad b/good b/mism b/loop && "
			    "cp t/fix.vhdx b/good/ok.vhdx && "
			    "cp t/c1.vhd b/bad/orphan.avhd && head -c 99999 /dev/urandom > "
			    "b/bad/junk.vhdx && : > b/bad/empty.vhd && cp t/dyn.vhd b/bad/trunc.vhd && "
			    "truncate -s 300000 b/bad/trunc.vhd && cp t/fix.vhdx b/bad/fine.vhdx && "
			    "cp t/c1.vhd b/mism/mism.avhd && cp t/dyn2.vhd b/mism/dyn.vhd && "
			    "cd b/loop && cp ../../t/dyn.vhd lb.vhd && "
			    "python3 '%s/../mkvhd.py' diff lb.vhd la.vhd >/dev/null && "
			    "python3 '%s/../mkvhd.py' diff la.vhd lb2.vhd >/dev/null && mv lb2.vhd lb.vhd && "
			    "cp ../../t/dyn.vhd self.vhd && "
			    "python3 '%s/../mkvhd.py' diff self.vhd s2.vhd >/dev/null && "
			    "mv s2.vhd self.vhd",
			    fx->dir, testdata(), testdata(), testdata()),
			 0);
	assert_int_equal(rfs_discover(root, NULL, &store), 0);
	assert_int_equal(store.nvms, 4);

	vm = find_vm(&store, "good");
	assert_false(vm->broken);

	vm = find_vm(&store, "bad");
	assert_true(vm->broken);
	assert_int_equal(vm->ndisks, 5);
	assert_false(find_disk(vm, "fine")->broken);
	assert_broken(vm, "orphan", "orphan.avhd: its parent dyn.vhd is not found in the folder", 1);
	assert_broken(vm, "junk", "junk.vhdx: not a VHD/VHDX image", 1);
	assert_broken(vm, "empty", "empty.vhd: empty file", 1);
	assert_broken(vm, "trunc", "trunc.vhd: truncated: the file ends at", 1);

	vm = find_vm(&store, "mism");
	assert_true(vm->broken);
	assert_int_equal(vm->ndisks, 1);
	assert_broken(vm, "dyn", "mism.avhd: parent identifier mismatch: dyn.vhd is not the disk", 2);

	vm = find_vm(&store, "loop");
	assert_true(vm->broken);
	assert_int_equal(vm->ndisks, 2);
	/* la -> lb -> la: lb was rewritten after la, so the first problem met is
	 * la's parent identifier; the loop is cut there, named after its last file */
	assert_broken(vm, "lb", "la.vhd: parent identifier mismatch: lb.vhd is not the disk", 2);
	assert_broken(vm, "self", "self.vhd: parent loop: its chain of parents comes back to self.vhd", 1);
	rfs_store_desc_free(&store);
}

/* Two tips on one base: names fall back to the tips' file names. */
static void test_shared_base(void **state)
{
	struct fixture *fx = *state;
	const struct rfs_vm_desc *vm;
	struct rfs_store_desc store;
	char root[4096];

	snprintf(root, sizeof(root), "%s/s", fx->dir);
	assert_int_equal(sh("cd '%s' && mkdir -p s/vm && cp t/dyn.vhd s/vm/ && "
			    "cp t/c1.vhd s/vm/x.avhd && cd s/vm && "
			    "python3 '%s/../mkvhd.py' diff dyn.vhd y.avhd --seed 9 >/dev/null",
			    fx->dir, testdata()),
			 0);
	assert_int_equal(rfs_discover(root, NULL, &store), 0);
	vm = find_vm(&store, "vm");
	assert_int_equal(vm->ndisks, 2);
	assert_string_equal(vm->disks[0].name, "x.avhd");
	assert_string_equal(vm->disks[1].name, "y.avhd");
	assert_false(vm->broken);
	rfs_store_desc_free(&store);
}

/* 200 VMs of 2 disks each are discovered well under a second. */
static void test_discover_200x2(void **state)
{
	struct fixture *fx = *state;
	struct rfs_store_desc store;
	struct timespec t0, t1;
	char root[4096];
	double secs;

	snprintf(root, sizeof(root), "%s/p", fx->dir);
	assert_int_equal(sh("cd '%s' && for i in $(seq -w 1 200); do mkdir -p p/vm$i && "
			    "ln t/fix.vhdx p/vm$i/sys.vhdx && ln t/dyn.vhd p/vm$i/data.vhd; done",
			    fx->dir),
			 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(rfs_discover(root, NULL, &store), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("discover 200 VMs x 2 disks: %.3f s\n", secs);
	assert_int_equal(store.nvms, 200);
	for (size_t i = 0; i < store.nvms; i++) {
		assert_int_equal(store.vms[i].ndisks, 2);
		assert_false(store.vms[i].broken);
	}
	assert_string_equal(store.vms[0].name, "vm001");
	rfs_store_desc_free(&store);
	/* The time is printed, not asserted: performance is measured by
	 * scripts/scale.sh, not by timed tests (valgrind and sanitizers run
	 * this test too). */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_layout),
		cmocka_unit_test(test_hyperv_layout),
		cmocka_unit_test(test_broken),
		cmocka_unit_test(test_shared_base),
		cmocka_unit_test(test_discover_200x2),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
