// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/test_points.c - ctl/points.c: point names from times
 * (collisions get .1, .2 from the oldest on), levels matched from the tip
 * across disks of different depths (files stat'ed in a temporary folder),
 * the ctl/<vm>/points text, "latest", sameness; and the parsing of the
 * SPEC §9 commands (ctl/command.c rfs_parse_point_command).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "command.h"
#include "points.h"

#define UNUSED __attribute__((unused))
#define T0 1767225600 /* 2026-01-01T00:00:00Z */

static void names_plain(void **state UNUSED)
{
	time_t t[3] = { T0 + 7200, T0 + 3600, T0 };
	char names[3][RFS_POINT_NAME_MAX];

	assert_int_equal(rfs_points_name(t, 3, names), 0);
	assert_string_equal(names[0], "2026-01-01T02:00:00Z");
	assert_string_equal(names[1], "2026-01-01T01:00:00Z");
	assert_string_equal(names[2], "2026-01-01T00:00:00Z");
}

static void names_collide(void **state UNUSED)
{
	/* newest first; the oldest keeps the plain name */
	time_t t[5] = { T0 + 60, T0, T0, T0 + 60, T0 };
	char names[5][RFS_POINT_NAME_MAX];

	assert_int_equal(rfs_points_name(t, 5, names), 0);
	assert_string_equal(names[4], "2026-01-01T00:00:00Z");
	assert_string_equal(names[3], "2026-01-01T00:01:00Z");
	assert_string_equal(names[2], "2026-01-01T00:00:00Z.1");
	assert_string_equal(names[1], "2026-01-01T00:00:00Z.2");
	assert_string_equal(names[0], "2026-01-01T00:01:00Z.1");
}

static void name_validity(void **state UNUSED)
{
	assert_true(rfs_point_name_valid("2026-01-01T00:00:00Z"));
	assert_true(rfs_point_name_valid("2026-01-01T00:00:00Z.1"));
	assert_true(rfs_point_name_valid("latest"));
	assert_false(rfs_point_name_valid(""));
	assert_false(rfs_point_name_valid("."));
	assert_false(rfs_point_name_valid(".."));
	assert_false(rfs_point_name_valid("a/b"));
	assert_false(rfs_point_name_valid("x..y"));
	assert_false(rfs_point_name_valid("0123456789012345678901234567890123456789"));
}

/* --- levels matched from the tip ------------------------------------------ */

static char dir[64];

static char *touch(const char *name, time_t t)
{
	char *path = malloc(strlen(dir) + strlen(name) + 2);
	struct timeval tv[2] = { { t, 0 }, { t, 0 } };
	FILE *f;

	sprintf(path, "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(utimes(path, tv), 0);
	return path;
}

static uint64_t size_of(void *arg UNUSED, const char *disk)
{
	return strcmp(disk, "a") == 0 ? 4096 : 8192;
}

/* a: a.vhdx <- a-1 <- a-2 <- a-3 (tip); b: b.vhd <- b-1 (tip); c broken. */
static void build_desc(struct rfs_vm_desc *vm)
{
	static const char *a[] = { "a-3.avhdx", "a-2.avhdx", "a-1.avhdx", "a.vhdx" };
	static const time_t at[] = { T0 + 300, T0 + 200, T0 + 100, T0 };
	static const char *b[] = { "b-1.avhd", "b.vhd" };
	static const time_t bt[] = { T0 + 250, T0 + 200 };

	memset(vm, 0, sizeof(*vm));
	vm->ndisks = 3;
	vm->disks = calloc(3, sizeof(*vm->disks));
	strcpy(vm->disks[0].name, "a");
	vm->disks[0].chain_len = 4;
	vm->disks[0].chain = calloc(4, sizeof(char *));
	for (int k = 0; k < 4; k++)
		vm->disks[0].chain[k] = touch(a[k], at[k]);
	strcpy(vm->disks[1].name, "b");
	vm->disks[1].chain_len = 2;
	vm->disks[1].chain = calloc(2, sizeof(char *));
	for (int k = 0; k < 2; k++)
		vm->disks[1].chain[k] = touch(b[k], bt[k]);
	strcpy(vm->disks[2].name, "c");
	vm->disks[2].broken = true;
}

static void levels_from_tip(void **state UNUSED)
{
	struct rfs_vm_desc desc;
	struct rfs_points *p, *q;
	size_t i, len, n;
	char *text;

	strcpy(dir, "/tmp/rfs-points.XXXXXX");
	assert_non_null(mkdtemp(dir));
	build_desc(&desc);
	assert_int_equal(rfs_points_build(&desc, &rfs_vhd_backend, 1, size_of, NULL, &p), 0);
	assert_int_equal(rfs_points_count(p), 2); /* b has 2 levels; c takes no part */
	assert_int_equal(rfs_points_ndisks(p), 2);
	text = rfs_points_text(p, &len);
	assert_string_equal(text, "2026-01-01T00:05:00Z\ta-3.avhdx,b-1.avhd\n"
				  "2026-01-01T00:03:20Z\ta-2.avhdx,b.vhd\n");
	assert_int_equal(len, strlen(text));
	free(text);
	assert_int_equal(rfs_points_find(p, "latest", &i), 0);
	assert_int_equal(i, 0);
	assert_int_equal(rfs_points_find(p, "2026-01-01T00:03:20Z", &i), 0);
	assert_int_equal(i, 1);
	assert_int_equal(rfs_points_find(p, "2026-01-01T00:00:00Z", &i), -ENOENT);
	/* point 1 of disk a: the chain cut at a-2 */
	{
		struct rfs_pdisk *pd = rfs_points_disk(p, 1, 0);
		char *const *chain = rfs_pdisk_chain(pd, &n);
		struct rfs_disk_attr attr;

		assert_string_equal(rfs_pdisk_name(pd), "a");
		assert_int_equal(n, 3);
		assert_string_equal(strrchr(chain[0], '/') + 1, "a-2.avhdx");
		assert_string_equal(strrchr(chain[2], '/') + 1, "a.vhdx");
		assert_int_equal(rfs_pdisk_attr(pd, &attr), 0); /* stat only: nothing opened */
		assert_int_equal(attr.size, 4096);
		assert_int_equal(attr.mtime.tv_sec, T0 + 200);
	}
	/* the same folder gives the same list; a new tip gives another */
	assert_int_equal(rfs_points_build(&desc, &rfs_vhd_backend, 1, size_of, NULL, &q), 0);
	assert_true(rfs_points_same(p, q));
	rfs_points_put(q);
	desc.disks[1].chain_len = 1; /* b loses its tip: one point */
	assert_int_equal(rfs_points_build(&desc, &rfs_vhd_backend, 1, size_of, NULL, &q), 0);
	assert_int_equal(rfs_points_count(q), 1);
	assert_false(rfs_points_same(p, q));
	desc.disks[1].chain_len = 2;
	/* a pdisk reference keeps the list alive */
	{
		struct rfs_pdisk *pd = rfs_pdisk_get(rfs_points_disk(q, 0, 1));

		rfs_points_put(q);
		assert_string_equal(rfs_pdisk_name(pd), "b");
		rfs_pdisk_put(pd);
	}
	rfs_points_put(p);
	for (size_t d = 0; d < 2; d++)
		for (size_t k = 0; k < desc.disks[d].chain_len; k++)
			unlink(desc.disks[d].chain[k]);
	rmdir(dir);
	rfs_vm_desc_free(&desc);
}

/* --- the commands ---------------------------------------------------------- */

static enum rfs_result parse(const char *s, enum rfs_point_verb *v, char *point)
{
	return rfs_parse_point_command(s, strlen(s), v, point, RFS_CMD_MAX + 1);
}

static void commands(void **state UNUSED)
{
	static char point[RFS_CMD_MAX + 1];
	enum rfs_point_verb v;

	assert_int_equal(parse("failover 2026-01-01T00:00:00Z\n", &v, point), RFS_OK);
	assert_int_equal(v, RFS_PVERB_FAILOVER_AT);
	assert_string_equal(point, "2026-01-01T00:00:00Z");
	assert_int_equal(parse("  INITIATEFAILOVER\tlatest ", &v, point), RFS_OK);
	assert_int_equal(v, RFS_PVERB_FAILOVER_AT);
	assert_string_equal(point, "latest");
	assert_int_equal(parse("failover\n", &v, point), RFS_OK);
	assert_int_equal(v, RFS_PVERB_NONE); /* plain failover: rfs_parse_command */
	assert_int_equal(parse("revert", &v, point), RFS_OK);
	assert_int_equal(v, RFS_PVERB_NONE);
	assert_int_equal(parse("test", &v, point), RFS_OK);
	assert_int_equal(v, RFS_PVERB_TEST);
	assert_string_equal(point, "");
	assert_int_equal(parse("TestReplicaSystem 2026-01-01T00:00:00Z.1", &v, point), RFS_OK);
	assert_int_equal(v, RFS_PVERB_TEST);
	assert_string_equal(point, "2026-01-01T00:00:00Z.1");
	assert_int_equal(parse("stop-test\n", &v, point), RFS_OK);
	assert_int_equal(v, RFS_PVERB_STOP_TEST);
	assert_int_equal(parse("destroysystem", &v, point), RFS_OK);
	assert_int_equal(v, RFS_PVERB_STOP_TEST);
	assert_int_equal(parse("stop-test now", &v, point), RFS_INVALID_PARAMETER);
	assert_int_equal(parse("failover a b", &v, point), RFS_INVALID_PARAMETER);
	assert_int_equal(parse("failover ../vm", &v, point), RFS_INVALID_PARAMETER);
	assert_int_equal(parse("failover x/y", &v, point), RFS_INVALID_PARAMETER);
	assert_int_equal(parse("test ..", &v, point), RFS_INVALID_PARAMETER);
	/* not text: left to rfs_parse_command (32776) */
	assert_int_equal(rfs_parse_point_command("failover \0x", 10, &v, point, sizeof(point)), RFS_OK);
	assert_int_equal(v, RFS_PVERB_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_plain),    cmocka_unit_test(names_collide),
		cmocka_unit_test(name_validity),  cmocka_unit_test(levels_from_tip),
		cmocka_unit_test(commands),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
