/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tests/unit/test_vm.c - ctl/vm.c (one VM's life cycle) through its public
 * API (vm.h), over an in-memory replica.
 *
 * The replica side is struct rfs_backend (ctl/disk.h) backed by a table of
 * in-memory "files": each has a path, an identifier, a virtual size and the
 * full content a chain with that file at its tip reads (a chain reads from
 * its tip, so no layering is modelled). A file can be made to fail open (a
 * broken disk); a new recovery point is a new file put in front of a chain.
 * The paths also exist as empty placeholder files in a real folder, since
 * vm.c checks them with access(2) before a failover and hashes them with
 * stat(2) (rfs_discover_chain_sig, rfs_discover_fingerprint).
 *
 * The VM descriptions (struct rfs_vm_desc) are built by hand; no image is
 * ever made. The state folder is a real mkdtemp folder under /tmp (overlays
 * need a filesystem that reports holes exactly: ext4 or tmpfs), since vm.c
 * stores vm.state and the overlays there.
 *
 * Tests that exposed a bug of ctl/vm.c (fixed since) are marked "BUG (file, function)"
 * with what they expect, what they get and why.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "command.h"
#include "discover.h"
#include "disk.h"
#include "overlay.h"
#include "points.h"
#include "savedstate.h"
#include "testutil.h"
#include "vm.h"

#define KiB 1024ull
#define VM_NAME "vm1"
#define OPEN_WAIT_MS 50

/* ---- the in-memory replica ---- */

#define MAX_FILES 32

struct mem_file {
	char path[PATH_MAX];
	uint8_t id[16];
	uint64_t size;
	uint8_t *data;     /* what a chain with this file at its tip reads */
	uint8_t *pristine; /* its bytes when made: the replica must never change */
	atomic_bool fail_open;
};

/* What an open chain is: its tip file (chains read from their tip). */
struct mem_img {
	struct mem_file *tip;
	size_t chain_len;
};

#define MEM_BLOCK (64 * 1024)

static struct {
	pthread_mutex_t lock; /* guards n (files are only added, never moved) */
	struct mem_file files[MAX_FILES];
	size_t n;
	atomic_int open_images; /* opened and not yet closed */
	atomic_long opens;
	atomic_long bad_reads;  /* reads past the end: a bug in the caller */
	atomic_int read_delay_ms; /* a slow replica, so that a job can be caught running */
	atomic_long extents;    /* extent() calls */
} mem = { .lock = PTHREAD_MUTEX_INITIALIZER };

static struct mem_file *mem_lookup(const char *path)
{
	struct mem_file *f = NULL;

	pthread_mutex_lock(&mem.lock);
	for (size_t i = 0; i < mem.n && !f; i++)
		if (!strcmp(mem.files[i].path, path))
			f = &mem.files[i];
	pthread_mutex_unlock(&mem.lock);
	return f;
}

static int mem_open(const char *const *paths, size_t n, unsigned max_handles, void **img, char *err,
		    size_t errlen)
{
	struct mem_img *m;

	(void)max_handles;
	if (n == 0) {
		snprintf(err, errlen, "empty chain");
		return -EINVAL;
	}
	for (size_t k = 0; k < n; k++) {
		struct mem_file *f = mem_lookup(paths[k]);

		if (!f) {
			snprintf(err, errlen, "%s: no such file", paths[k]);
			return -ENOENT;
		}
		if (atomic_load(&f->fail_open)) {
			snprintf(err, errlen, "%s: not an image (test)", paths[k]);
			return -EIO;
		}
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->tip = mem_lookup(paths[0]);
	m->chain_len = n;
	*img = m;
	atomic_fetch_add(&mem.open_images, 1);
	atomic_fetch_add(&mem.opens, 1);
	return 0;
}

static void mem_close(void *img)
{
	if (!img)
		return;
	atomic_fetch_sub(&mem.open_images, 1);
	free(img);
}

static int mem_read(void *img, void *buf, size_t len, uint64_t off)
{
	struct mem_img *m = img;

	if (off > m->tip->size || len > m->tip->size - off) {
		atomic_fetch_add(&mem.bad_reads, 1);
		return -EINVAL;
	}
	if (atomic_load(&mem.read_delay_ms))
		usleep((useconds_t)atomic_load(&mem.read_delay_ms) * 1000u);
	memcpy(buf, m->tip->data + off, len);
	return 0;
}

static void mem_info(void *img, struct rfs_image_info *info)
{
	struct mem_img *m = img;

	info->virtual_size = m->tip->size;
	memcpy(info->identifier, m->tip->id, sizeof(info->identifier));
}

static int mem_stat(void *img, uint64_t *allocated, struct timespec *mtime, struct timespec *ctime)
{
	struct mem_img *m = img;

	*allocated = m->tip->size;
	mtime->tv_sec = ctime->tv_sec = 1000000000;
	mtime->tv_nsec = ctime->tv_nsec = 0;
	return 0;
}

static int mem_identify(const char *path, uint8_t id[16])
{
	struct mem_file *f = mem_lookup(path);

	if (!f)
		return -ENOENT;
	memcpy(id, f->id, 16);
	return 0;
}

/* Holes of the in-memory chain: its 4 KiB blocks that are all zeros. */
static bool mem_block_zero(const struct mem_file *f, uint64_t block)
{
	uint64_t start = block * 4096, end = start + 4096 < f->size ? start + 4096 : f->size;

	for (uint64_t i = start; i < end; i++)
		if (f->data[i])
			return false;
	return true;
}

static int mem_extent(void *img, uint64_t off, uint64_t len, uint64_t *run, bool *allocated)
{
	struct mem_img *m = img;
	uint64_t size = m->tip->size, end, pos;

	if (off >= size || !len)
		return -EINVAL;
	atomic_fetch_add(&mem.extents, 1);
	end = len > size - off ? size : off + len;
	*allocated = !mem_block_zero(m->tip, off / 4096);
	pos = (off / 4096 + 1) * 4096;
	while (pos < end && !mem_block_zero(m->tip, pos / 4096) == *allocated)
		pos += 4096;
	*run = (pos < end ? pos : end) - off;
	return 0;
}

static const struct rfs_backend mem_backend = {
	.open = mem_open,
	.close = mem_close,
	.read = mem_read,
	.info = mem_info,
	.stat = mem_stat,
	.identify = mem_identify,
	.extent = mem_extent,
};

static void mem_reset(void)
{
	for (size_t i = 0; i < mem.n; i++) {
		free(mem.files[i].data);
		free(mem.files[i].pristine);
	}
	memset(mem.files, 0, sizeof(mem.files));
	mem.n = 0;
	atomic_store(&mem.open_images, 0);
	atomic_store(&mem.opens, 0);
	atomic_store(&mem.bad_reads, 0);
	atomic_store(&mem.read_delay_ms, 0);
	atomic_store(&mem.extents, 0);
}

/* The byte at @off of the file whose identifier starts with @tag. */
static uint8_t content_byte(uint8_t tag, uint64_t off)
{
	uint64_t x = (off + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t)tag * 0xBF58476D1CE4E5B9ull;

	x ^= x >> 29;
	return (uint8_t)(x >> 11);
}

/* ---- CRC-32 (IEEE 802.3, as zlib's crc32()) for hand-written vm.state ---- */

static uint32_t crc32_ieee(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t c = 0xFFFFFFFFu;

	for (size_t i = 0; i < len; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
	}
	return c ^ 0xFFFFFFFFu;
}

/* ---- fixture: a replica folder, a state folder, a description, hooks ---- */

struct changed_call {
	char disk[NAME_MAX + 1];
	bool content;
};

struct fx {
	char root[64];
	char vmdir[PATH_MAX];     /* the VM's folder in the replica: placeholders */
	int state_fd;             /* the --state folder */
	struct rfs_vm_desc desc;  /* the folder as describe() reports it now */
	struct rfs_vm_config cfg;
	struct rfs_vm *vm;

	pthread_mutex_t lock;     /* guards the hook records below */
	struct changed_call changed[512];
	unsigned n_changed, n_reshaped, n_idle, n_describe;
	bool wrong_vm;            /* a hook was handed another VM or name */

	uint8_t *models[4];       /* model_of() buffers, freed at teardown */
	unsigned nmodels;
};

static void hook_changed(void *arg, struct rfs_vm *vm, struct rfs_disk *d, bool content)
{
	struct fx *fx = arg;

	pthread_mutex_lock(&fx->lock);
	fx->wrong_vm |= vm != fx->vm;
	if (fx->n_changed < sizeof(fx->changed) / sizeof(fx->changed[0])) {
		snprintf(fx->changed[fx->n_changed].disk, sizeof(fx->changed[0].disk), "%s",
			 rfs_disk_name(d));
		fx->changed[fx->n_changed].content = content;
	}
	fx->n_changed++;
	pthread_mutex_unlock(&fx->lock);
}

static void hook_reshaped(void *arg, struct rfs_vm *vm)
{
	struct fx *fx = arg;

	pthread_mutex_lock(&fx->lock);
	fx->wrong_vm |= vm != fx->vm;
	fx->n_reshaped++;
	pthread_mutex_unlock(&fx->lock);
}

static void hook_idle(void *arg, struct rfs_vm *vm)
{
	struct fx *fx = arg;

	pthread_mutex_lock(&fx->lock);
	fx->wrong_vm |= vm != fx->vm;
	fx->n_idle++;
	pthread_mutex_unlock(&fx->lock);
}

/* A deep copy of @src into @dst, freed by rfs_vm_desc_free(). */
static int desc_copy(const struct rfs_vm_desc *src, struct rfs_vm_desc *dst)
{
	*dst = *src;
	dst->disks = calloc(src->ndisks ? src->ndisks : 1, sizeof(*dst->disks));
	if (!dst->disks)
		return -ENOMEM;
	for (size_t i = 0; i < src->ndisks; i++) {
		const struct rfs_disk_desc *s = &src->disks[i];
		struct rfs_disk_desc *d = &dst->disks[i];

		*d = *s;
		d->chain = calloc(s->chain_len ? s->chain_len : 1, sizeof(*d->chain));
		d->chain_len = 0;
		if (!d->chain) {
			dst->ndisks = i;
			rfs_vm_desc_free(dst);
			return -ENOMEM;
		}
		for (size_t k = 0; k < s->chain_len; k++) {
			d->chain[k] = strdup(s->chain[k]);
			if (!d->chain[k]) {
				dst->ndisks = i + 1;
				rfs_vm_desc_free(dst);
				return -ENOMEM;
			}
			d->chain_len++;
		}
	}
	return 0;
}

static int hook_describe(void *arg, const char *vm, struct rfs_vm_desc *out, uint64_t *fp)
{
	struct fx *fx = arg;
	int r;

	pthread_mutex_lock(&fx->lock);
	fx->wrong_vm |= strcmp(vm, VM_NAME) != 0;
	fx->n_describe++;
	pthread_mutex_unlock(&fx->lock);
	r = desc_copy(&fx->desc, out);
	if (r == 0 && rfs_discover_fingerprint(fx->vmdir, fp) < 0)
		*fp = 0;
	return r;
}

static int fx_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	char path[PATH_MAX];

	if (!fx)
		return -1;
	strcpy(fx->root, "/tmp/vm-test-XXXXXX");
	if (!mkdtemp(fx->root))
		goto out_free;
	snprintf(path, sizeof(path), "%s/replica", fx->root);
	snprintf(fx->vmdir, sizeof(fx->vmdir), "%s/replica/" VM_NAME, fx->root);
	if (mkdir(path, 0700) < 0 || mkdir(fx->vmdir, 0700) < 0)
		goto out_rm;
	snprintf(path, sizeof(path), "%s/state", fx->root);
	if (mkdir(path, 0700) < 0)
		goto out_rm;
	fx->state_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fx->state_fd < 0)
		goto out_rm;
	snprintf(fx->desc.name, sizeof(fx->desc.name), VM_NAME);
	snprintf(fx->desc.dir, sizeof(fx->desc.dir), "%s", fx->vmdir);
	fx->cfg.state_root_fd = fx->state_fd;
	fx->cfg.max_handles = 2;
	fx->cfg.open_wait_ms = OPEN_WAIT_MS;
	fx->cfg.backend = &mem_backend;
	fx->cfg.hooks = (struct rfs_vm_hooks){
		.changed = hook_changed,
		.reshaped = hook_reshaped,
		.idle = hook_idle,
		.describe = hook_describe,
		.arg = fx,
	};
	pthread_mutex_init(&fx->lock, NULL);
	mem_reset();
	*state = fx;
	return 0;

out_rm:
	sh("rm -rf '%s'", fx->root);
out_free:
	free(fx);
	return -1;
}

static int fx_teardown(void **state)
{
	struct fx *fx = *state;

	rfs_vm_put(fx->vm);
	cow_wait_freed(); /* no closer work spills into the next test */
	close(fx->state_fd);
	sh("rm -rf '%s'", fx->root);
	rfs_vm_desc_free(&fx->desc);
	while (fx->nmodels)
		free(fx->models[--fx->nmodels]);
	pthread_mutex_destroy(&fx->lock);
	mem_reset();
	free(fx);
	return 0;
}

/* A replica file @name of @size bytes, identifier 16 x @tag, and its
 * placeholder in the VM's folder. */
static struct mem_file *add_file(struct fx *fx, const char *name, uint64_t size, uint8_t tag)
{
	struct mem_file *f;
	char path[PATH_MAX];
	int fd;

	assert_true(snprintf(path, sizeof(path), "%s/%s", fx->vmdir, name) < (int)sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, name, strlen(name)), (ssize_t)strlen(name));
	close(fd);
	pthread_mutex_lock(&mem.lock);
	assert_true(mem.n < MAX_FILES);
	f = &mem.files[mem.n];
	snprintf(f->path, sizeof(f->path), "%s", path);
	memset(f->id, tag, sizeof(f->id));
	f->size = size;
	f->data = malloc(size);
	f->pristine = malloc(size);
	assert_non_null(f->data);
	assert_non_null(f->pristine);
	for (uint64_t i = 0; i < size; i++)
		f->data[i] = content_byte(tag, i);
	memcpy(f->pristine, f->data, size);
	atomic_store(&f->fail_open, false);
	mem.n++;
	pthread_mutex_unlock(&mem.lock);
	return f;
}

/* Remove the placeholder of file @name (the table keeps its content). */
static void remove_file(struct fx *fx, const char *name)
{
	char path[PATH_MAX];

	assert_true(snprintf(path, sizeof(path), "%s/%s", fx->vmdir, name) < (int)sizeof(path));
	assert_int_equal(unlink(path), 0);
}

static int desc_cmp(const void *a, const void *b)
{
	return strcmp(((const struct rfs_disk_desc *)a)->name, ((const struct rfs_disk_desc *)b)->name);
}

static void desc_remove(struct fx *fx, const char *name)
{
	for (size_t i = 0; i < fx->desc.ndisks; i++) {
		struct rfs_disk_desc *d = &fx->desc.disks[i];

		if (strcmp(d->name, name))
			continue;
		for (size_t k = 0; k < d->chain_len; k++)
			free(d->chain[k]);
		free(d->chain);
		memmove(d, d + 1, (fx->desc.ndisks - i - 1) * sizeof(*d));
		fx->desc.ndisks--;
		return;
	}
}

/* Describe disk @name as the chain of @n files (tip first), replacing any
 * description of it; the disks stay sorted by name as discovery sorts them. */
static void desc_disk(struct fx *fx, const char *name, size_t n, ...)
{
	struct rfs_disk_desc *d, *grown;
	va_list ap;

	desc_remove(fx, name);
	grown = realloc(fx->desc.disks, (fx->desc.ndisks + 1) * sizeof(*grown));
	assert_non_null(grown);
	fx->desc.disks = grown;
	d = &fx->desc.disks[fx->desc.ndisks++];
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->chain = calloc(n ? n : 1, sizeof(*d->chain));
	assert_non_null(d->chain);
	va_start(ap, n);
	for (size_t k = 0; k < n; k++) {
		const char *file = va_arg(ap, const char *);

		assert_true(asprintf(&d->chain[k], "%s/%s", fx->vmdir, file) > 0);
	}
	va_end(ap);
	d->chain_len = n;
	assert_int_equal(rfs_discover_chain_sig(d->chain, n, &d->sig), 0);
	qsort(fx->desc.disks, fx->desc.ndisks, sizeof(*d), desc_cmp);
}

static uint64_t fx_fingerprint(struct fx *fx)
{
	uint64_t fp;

	assert_int_equal(rfs_discover_fingerprint(fx->vmdir, &fp), 0);
	return fp;
}

static void fx_open(struct fx *fx)
{
	assert_null(fx->vm);
	assert_int_equal(rfs_vm_open(&fx->desc, fx_fingerprint(fx), &fx->cfg, &fx->vm), 0);
	assert_non_null(fx->vm);
	assert_string_equal(rfs_vm_name(fx->vm), VM_NAME);
}

/* Drop the VM (as at unmount): every image it opened is closed. */
static void fx_close(struct fx *fx)
{
	assert_false(fx->wrong_vm);
	rfs_vm_put(fx->vm);
	fx->vm = NULL;
	assert_int_equal(atomic_load(&mem.open_images), 0);
}

static void fx_reopen(struct fx *fx)
{
	fx_close(fx);
	fx_open(fx);
}

static void fx_forget_hooks(struct fx *fx)
{
	pthread_mutex_lock(&fx->lock);
	fx->n_changed = fx->n_reshaped = fx->n_idle = fx->n_describe = 0;
	pthread_mutex_unlock(&fx->lock);
}

static unsigned count_changed(struct fx *fx, const char *disk, bool content)
{
	unsigned n = 0;

	pthread_mutex_lock(&fx->lock);
	for (unsigned i = 0; i < fx->n_changed; i++)
		if (!strcmp(fx->changed[i].disk, disk) && fx->changed[i].content == content)
			n++;
	pthread_mutex_unlock(&fx->lock);
	return n;
}

static unsigned hook_count(struct fx *fx, const unsigned *field)
{
	unsigned n;

	pthread_mutex_lock(&fx->lock);
	n = *field;
	pthread_mutex_unlock(&fx->lock);
	return n;
}

static struct rfs_outcome cmd(struct fx *fx, const char *text)
{
	return rfs_vm_command(fx->vm, text, strlen(text), true);
}

#define assert_outcome(o, want_code, want_err)                        \
	do {                                                          \
		struct rfs_outcome o_ = (o);                          \
		assert_int_equal(o_.code, (want_code));               \
		assert_int_equal(o_.err, (want_err));                 \
	} while (0)

static void assert_status(struct fx *fx, const char *want)
{
	char buf[128];
	int n = rfs_vm_status(fx->vm, buf, sizeof(buf));

	assert_true(n >= 0 && n < (int)sizeof(buf));
	buf[n] = '\0';
	assert_string_equal(buf, want);
	assert_int_equal(n, (int)strlen(want));
}

/* The names of the listed disks, joined by ",". */
static void disk_names(struct fx *fx, char *out, size_t size)
{
	struct rfs_disk **list;
	size_t n, len = 0;

	out[0] = '\0';
	assert_int_equal(rfs_vm_disks(fx->vm, &list, &n), 0);
	for (size_t i = 0; i < n; i++) {
		len += (size_t)snprintf(out + len, size - len, "%s%s", i ? "," : "", rfs_disk_name(list[i]));
		rfs_disk_put(list[i]);
	}
	free(list);
}

#define assert_disks(fx, want)                              \
	do {                                                \
		char names_[256];                           \
		disk_names((fx), names_, sizeof(names_));   \
		assert_string_equal(names_, (want));        \
	} while (0)

/* Listed disk @name with a reference (rfs_disk_put), or NULL. */
static struct rfs_disk *disk_get(struct fx *fx, const char *name)
{
	struct rfs_disk **list, *found = NULL;
	size_t n;

	assert_int_equal(rfs_vm_disks(fx->vm, &list, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (!found && !strcmp(rfs_disk_name(list[i]), name))
			found = list[i];
		else
			rfs_disk_put(list[i]);
	}
	free(list);
	return found;
}

/* The whole disk reads as @want (@size bytes). */
static void assert_disk_reads(struct rfs_disk *d, const uint8_t *want, uint64_t size)
{
	const size_t chunk = 40 * KiB; /* not a cluster multiple: reads straddle them */
	uint8_t *buf = malloc(chunk);

	assert_non_null(buf);
	assert_int_equal(rfs_disk_size(d), size);
	for (uint64_t off = 0; off < size; off += chunk) {
		size_t len = size - off < chunk ? (size_t)(size - off) : chunk;
		int r = rfs_disk_read(d, buf, len, off);

		if (r != 0) {
			free(buf);
			fail_msg("%s: read %zu @ %llu = %d", rfs_disk_name(d), len, (unsigned long long)off, r);
		}
		for (size_t i = 0; i < len; i++) {
			if (buf[i] != want[off + i]) {
				unsigned got = buf[i], exp = want[off + i];

				free(buf);
				fail_msg("%s: byte %llu reads 0x%02x, expected 0x%02x", rfs_disk_name(d),
					 (unsigned long long)(off + i), got, exp);
			}
		}
	}
	free(buf);
}

/* Disk @name is listed and reads as @want. */
static void assert_named_reads(struct fx *fx, const char *name, const uint8_t *want, uint64_t size)
{
	struct rfs_disk *d = disk_get(fx, name);

	if (!d)
		fail_msg("disk %s is not listed", name);
	assert_disk_reads(d, want, size);
	rfs_disk_put(d);
}

/* No replica file was ever changed. */
static void assert_replica_untouched(void)
{
	pthread_mutex_lock(&mem.lock);
	for (size_t i = 0; i < mem.n; i++)
		assert_memory_equal(mem.files[i].data, mem.files[i].pristine, mem.files[i].size);
	pthread_mutex_unlock(&mem.lock);
	assert_int_equal(atomic_load(&mem.bad_reads), 0);
}

/* A model of a disk: its replica bytes plus what the test wrote (freed at
 * teardown). */
static uint8_t *model_of(struct fx *fx, const struct mem_file *f)
{
	uint8_t *m = malloc(f->size);

	assert_non_null(m);
	assert_true(fx->nmodels < sizeof(fx->models) / sizeof(fx->models[0]));
	fx->models[fx->nmodels++] = m;
	memcpy(m, f->pristine, f->size);
	return m;
}

/* Write @len bytes of @fill at @off to disk @name through an open file,
 * and into @model. */
static void write_disk(struct fx *fx, const char *name, uint8_t *model, uint64_t off, size_t len,
		       uint8_t fill)
{
	struct rfs_disk *d = disk_get(fx, name);
	uint8_t *buf = malloc(len);

	assert_non_null(d);
	assert_non_null(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(fill + i * 7);
	assert_int_equal(rfs_vm_disk_open(fx->vm, d, true), 0);
	assert_int_equal(rfs_disk_write(d, buf, len, off), (ssize_t)len);
	assert_int_equal(rfs_disk_sync(d, true), 0);
	rfs_vm_disk_release(fx->vm, d);
	memcpy(model + off, buf, len);
	free(buf);
	rfs_disk_put(d);
}

/* The usual writes: unaligned, across clusters, and the last bytes. */
static void write_pattern(struct fx *fx, const char *name, uint8_t *model, uint64_t size, uint8_t fill)
{
	write_disk(fx, name, model, 1000, 5000, fill);
	write_disk(fx, name, model, 64 * KiB, 4096, (uint8_t)(fill + 1));
	write_disk(fx, name, model, size - 100, 100, (uint8_t)(fill + 2));
}

static int vm_state_fd(struct fx *fx)
{
	int fd = openat(fx->state_fd, VM_NAME, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

static void load_saved(struct fx *fx, struct rfs_saved *s)
{
	int fd = vm_state_fd(fx);

	assert_int_equal(rfs_saved_load(fd, s), 0);
	close(fd);
}

static bool overlay_exists(struct fx *fx, const char *disk)
{
	int fd = openat(fx->state_fd, VM_NAME, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool e;

	if (fd < 0)
		return false;
	e = cow_exists(fd, disk);
	close(fd);
	return e;
}

/* The text of STATE/vm1/vm.state (malloc'd, NUL-terminated). */
static char *saved_text(struct fx *fx)
{
	char path[PATH_MAX];
	size_t len = 0;
	char *buf, *text;

	snprintf(path, sizeof(path), "%s/state/" VM_NAME "/vm.state", fx->root);
	buf = slurp(path, &len);
	assert_non_null(buf);
	text = malloc(len + 1);
	assert_non_null(text);
	memcpy(text, buf, len);
	text[len] = '\0';
	free(buf);
	return text;
}

static void assert_tip(const struct rfs_saved *s, const char *disk, const char *file, uint8_t tag)
{
	const struct rfs_saved_tip *t = rfs_saved_find_tip(s, disk);
	uint8_t id[16];

	if (!t)
		fail_msg("vm.state has no tip for disk %s", disk);
	assert_string_equal(t->file, file);
	memset(id, tag, sizeof(id));
	assert_memory_equal(t->identifier, id, sizeof(id));
}

/* Write STATE/vm1/vm.state as @body followed by its crc line. */
static void write_saved_raw(struct fx *fx, const char *body)
{
	char text[512];
	int fd, dfd = vm_state_fd(fx);
	int n = snprintf(text, sizeof(text), "%scrc %08x\n", body, crc32_ieee(body, strlen(body)));

	fd = openat(dfd, "vm.state", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, (size_t)n), n);
	close(fd);
	close(dfd);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#define SYS_SIZE (256 * KiB)
#define DATA_SIZE (128 * KiB)

/* Two healthy disks: data (data.vhdx, tag 0x22) and sys (sys.vhdx, 0x11). */
static void two_disks(struct fx *fx, struct mem_file **sys, struct mem_file **data)
{
	*sys = add_file(fx, "sys.vhdx", SYS_SIZE, 0x11);
	*data = add_file(fx, "data.vhdx", DATA_SIZE, 0x22);
	desc_disk(fx, "sys", 1, "sys.vhdx");
	desc_disk(fx, "data", 1, "data.vhdx");
}

/* Wait (bounded) until the VM's job has ended; its text into @text. */
static void wait_job_end(struct fx *fx, char *text, int size)
{
	double deadline = now_ms() + 20000;

	for (;;) {
		int n = rfs_vm_job(fx->vm, text, size);

		assert_true(n > 0 && n < size);
		if (!strstr(text, "JobState: 4\n"))
			return;
		assert_true(now_ms() < deadline);
		usleep(1000);
	}
}

/* commit: 4096 at once, then the job ends Completed. */
static void commit_done(struct fx *fx)
{
	char text[512];

	assert_outcome(cmd(fx, "commit"), RFS_JOB_STARTED, 0);
	wait_job_end(fx, text, sizeof(text));
	assert_non_null(strstr(text, "JobType: 99\nJobState: 7\nPercentComplete: 100\nElapsedTime: "));
	assert_non_null(strstr(text, "\nErrorCode: 0\nErrorDescription: \n"));
}

/* Where the data of the overlay of @disk is: the first data offset at or
 * after disk offset @off (-1: none), in disk offsets. */
static int64_t overlay_data_from(struct fx *fx, const char *disk, uint64_t off)
{
	char name[NAME_MAX + 1];
	uint8_t hdr[20];
	int dirfd = vm_state_fd(fx), fd;
	uint32_t cluster;
	off_t data;

	snprintf(name, sizeof(name), "%s.overlay", disk);
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	close(dirfd);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
	cluster = (uint32_t)hdr[16] | (uint32_t)hdr[17] << 8 | (uint32_t)hdr[18] << 16 | (uint32_t)hdr[19] << 24;
	data = lseek(fd, (off_t)(cluster + off), SEEK_DATA);
	close(fd);
	return data < 0 ? -1 : (int64_t)(data - cluster);
}

/* ---- tests ---- */

/* A healthy VM opens in state 3, read-only, reading the replica. */
static void test_open_healthy(void **state)
{
	struct fx *fx = *state;
	struct mem_file *sys, *data;
	struct rfs_disk_attr attr;
	struct rfs_disk *d;
	char buf[64];

	two_disks(fx, &sys, &data);
	fx_open(fx);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_REPLICATING);
	assert_int_equal(rfs_vm_status(fx->vm, buf, sizeof(buf)), 0);
	assert_false(rfs_vm_writable(fx->vm));
	assert_disks(fx, "data,sys");
	assert_named_reads(fx, "sys", sys->data, SYS_SIZE);
	assert_named_reads(fx, "data", data->data, DATA_SIZE);

	d = disk_get(fx, "sys");
	assert_non_null(d);
	assert_ptr_equal(rfs_disk_owner(d), fx->vm);
	assert_int_equal(rfs_disk_attr(d, &attr), 0);
	assert_int_equal(attr.size, SYS_SIZE);
	memset(buf, 0xAB, sizeof(buf));
	assert_int_equal(rfs_disk_write(d, buf, sizeof(buf), 0), -EROFS);
	assert_int_equal(rfs_vm_disk_open(fx->vm, d, true), -EROFS);
	assert_int_equal(rfs_vm_disk_open(fx->vm, d, false), 0);
	assert_int_equal(rfs_disk_write(d, buf, sizeof(buf), 4096), -EROFS);
	rfs_vm_disk_release(fx->vm, d);
	rfs_disk_put(d);

	assert_false(overlay_exists(fx, "sys"));
	assert_int_equal(hook_count(fx, &fx->n_changed), 0);
	assert_int_equal(hook_count(fx, &fx->n_reshaped), 0);
	assert_int_equal(hook_count(fx, &fx->n_idle), 0);
	assert_replica_untouched();
	fx_close(fx);
}

/* failover: state 5, writable, writes land in overlays, the point stored. */
static void test_failover(void **state)
{
	struct fx *fx = *state;
	struct mem_file *sys, *data;
	uint8_t *msys, *mdata;
	struct rfs_saved s;
	char *text;

	two_disks(fx, &sys, &data);
	msys = model_of(fx, sys);
	mdata = model_of(fx, data);
	fx_open(fx);
	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_RECOVERED);
	assert_status(fx, "0 Completed with No Error\n");
	assert_true(rfs_vm_writable(fx->vm));
	assert_int_equal(hook_count(fx, &fx->n_changed), 2);
	assert_int_equal(count_changed(fx, "sys", false), 1);
	assert_int_equal(count_changed(fx, "data", false), 1);
	assert_int_equal(hook_count(fx, &fx->n_reshaped), 0);
	assert_true(overlay_exists(fx, "sys"));
	assert_true(overlay_exists(fx, "data"));

	/* before any write the disks read the replica */
	assert_named_reads(fx, "sys", sys->data, SYS_SIZE);
	write_pattern(fx, "sys", msys, SYS_SIZE, 0x40);
	write_pattern(fx, "data", mdata, DATA_SIZE, 0x80);
	assert_named_reads(fx, "sys", msys, SYS_SIZE);
	assert_named_reads(fx, "data", mdata, DATA_SIZE);
	assert_replica_untouched();

	load_saved(fx, &s);
	assert_int_equal(s.version, 2);
	assert_int_equal(s.state, RFS_STATE_RECOVERED);
	assert_true(s.has_status);
	assert_int_equal(s.status, RFS_OK);
	assert_int_equal(s.ntips, 2);
	assert_tip(&s, "data", "data.vhdx", 0x22);
	assert_tip(&s, "sys", "sys.vhdx", 0x11);
	rfs_saved_free(&s);
	text = saved_text(fx);
	assert_true(!strncmp(text, "replicafs-vm-state 2\nstate 5\nstatus 0\n"
			     "tip data/data.vhdx 22222222222222222222222222222222\n"
			     "tip sys/sys.vhdx 11111111111111111111111111111111\ncrc ",
			     strlen("replicafs-vm-state 2\nstate 5\nstatus 0\n"
				    "tip data/data.vhdx 22222222222222222222222222222222\n"
				    "tip sys/sys.vhdx 11111111111111111111111111111111\ncrc ")));
	free(text);
	fx_close(fx);
}

/* SEEK_DATA/SEEK_HOLE through the disk: the replica's holes (its backend's
 * extent), then the overlay's clusters and discarded ranges over them;
 * discard refused before failover, zeros after it. */
static void test_seek_discard(void **state)
{
	struct fx *fx = *state;
	struct mem_file *sys, *data;
	struct rfs_disk *d;
	uint8_t *msys, buf[4096];
	uint64_t at = 0;

	two_disks(fx, &sys, &data);
	/* replica holes: [16K, 64K) and [128K, 192K) */
	memset(sys->data + 16 * KiB, 0, 48 * KiB);
	memset(sys->data + 128 * KiB, 0, 64 * KiB);
	memcpy(sys->pristine, sys->data, SYS_SIZE);
	msys = model_of(fx, sys);
	fx_open(fx);
	d = disk_get(fx, "sys");
	assert_non_null(d);

	assert_int_equal(rfs_disk_seek(d, 0, true, &at), 0);
	assert_int_equal(at, 0);
	assert_int_equal(rfs_disk_seek(d, 0, false, &at), 0);
	assert_int_equal(at, 16 * KiB);
	assert_int_equal(rfs_disk_seek(d, 16 * KiB, true, &at), 0);
	assert_int_equal(at, 64 * KiB);
	assert_int_equal(rfs_disk_seek(d, 64 * KiB, false, &at), 0);
	assert_int_equal(at, 128 * KiB);
	assert_int_equal(rfs_disk_seek(d, 200 * KiB, false, &at), 0);
	assert_int_equal(at, SYS_SIZE); /* the end counts as a hole */
	assert_int_equal(rfs_disk_seek(d, SYS_SIZE, true, &at), -ENXIO);
	assert_int_equal(rfs_disk_seek(d, SYS_SIZE, false, &at), -ENXIO);
	assert_int_equal(rfs_disk_discard(d, 0, 4096), -EROFS);
	rfs_disk_put(d);

	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	d = disk_get(fx, "sys");
	assert_non_null(d);
	write_disk(fx, "sys", msys, 20 * KiB, 4096, 0x33);
	assert_int_equal(rfs_disk_seek(d, 16 * KiB, true, &at), 0);
	assert_int_equal(at, 20 * KiB);
	assert_int_equal(rfs_disk_seek(d, 20 * KiB, false, &at), 0);
	assert_int_equal(at, 24 * KiB);

	/* discard replica data and the tail: holes now, reading zeros */
	assert_int_equal(rfs_disk_discard(d, 0, 16 * KiB), 0);
	memset(msys, 0, 16 * KiB);
	assert_int_equal(rfs_disk_discard(d, 192 * KiB, SYS_SIZE - 192 * KiB), 0);
	memset(msys + 192 * KiB, 0, SYS_SIZE - 192 * KiB);
	assert_int_equal(rfs_disk_sync(d, true), 0);
	assert_int_equal(rfs_disk_seek(d, 0, true, &at), 0);
	assert_int_equal(at, 20 * KiB);
	assert_int_equal(rfs_disk_seek(d, 64 * KiB, true, &at), 0);
	assert_int_equal(at, 64 * KiB);
	assert_int_equal(rfs_disk_seek(d, 128 * KiB, true, &at), -ENXIO);
	assert_named_reads(fx, "sys", msys, SYS_SIZE);
	assert_int_equal(rfs_disk_read(d, buf, sizeof(buf), 8 * KiB), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	rfs_disk_put(d);
	assert_replica_untouched();
	fx_close(fx);
}

/* revert waits for open files (32774 after open_wait_ms, nothing lost),
 * then succeeds once they are closed: back to the replica's bytes. */
static void test_revert_in_use(void **state)
{
	struct fx *fx = *state;
	struct mem_file *sys, *data;
	uint8_t *msys;
	struct rfs_disk *d;
	struct rfs_saved s;
	double t0, waited;
	char buf[16];

	two_disks(fx, &sys, &data);
	msys = model_of(fx, sys);
	fx_open(fx);
	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	write_pattern(fx, "sys", msys, SYS_SIZE, 0x40);
	fx_forget_hooks(fx);

	d = disk_get(fx, "data");
	assert_int_equal(rfs_vm_disk_open(fx->vm, d, false), 0);
	t0 = now_ms();
	assert_outcome(cmd(fx, "revert"), RFS_IN_USE, EBUSY);
	waited = now_ms() - t0;
	assert_true(waited >= OPEN_WAIT_MS - 1);
	assert_status(fx, "32774 System is in use\n");
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_RECOVERED);
	assert_true(rfs_vm_writable(fx->vm));
	assert_true(overlay_exists(fx, "sys"));
	assert_true(overlay_exists(fx, "data"));
	assert_named_reads(fx, "sys", msys, SYS_SIZE);
	assert_int_equal(hook_count(fx, &fx->n_changed), 0);
	load_saved(fx, &s);
	assert_int_equal(s.state, RFS_STATE_RECOVERED);
	assert_int_equal(s.status, RFS_IN_USE);
	assert_int_equal(s.ntips, 2); /* the point is kept */
	rfs_saved_free(&s);

	rfs_vm_disk_release(fx->vm, d);
	assert_int_equal(hook_count(fx, &fx->n_idle), 0); /* nothing was waiting */
	assert_outcome(cmd(fx, "RevertFailover\n"), RFS_OK, 0);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_REPLICATING);
	assert_status(fx, "0 Completed with No Error\n");
	assert_false(rfs_vm_writable(fx->vm));
	assert_false(overlay_exists(fx, "sys"));
	assert_false(overlay_exists(fx, "data"));
	assert_named_reads(fx, "sys", sys->data, SYS_SIZE);
	assert_named_reads(fx, "data", data->data, DATA_SIZE);
	assert_int_equal(count_changed(fx, "sys", true), 1);
	assert_int_equal(count_changed(fx, "data", true), 1);
	assert_int_equal(hook_count(fx, &fx->n_changed), 2);
	assert_int_equal(rfs_disk_write(d, buf, sizeof(buf), 0), -EROFS);
	assert_int_equal(rfs_vm_disk_open(fx->vm, d, true), -EROFS);
	rfs_disk_put(d);
	load_saved(fx, &s);
	assert_int_equal(s.state, RFS_STATE_REPLICATING);
	assert_true(s.has_status);
	assert_int_equal(s.status, RFS_OK);
	assert_int_equal(s.ntips, 0);
	rfs_saved_free(&s);
	assert_replica_untouched();
	fx_close(fx);
}

/* commit, every refusal of the state machine, the parser's refusals. */
static void test_commit_and_refusals(void **state)
{
	struct fx *fx = *state;
	char big[RFS_CMD_MAX + 2];
	struct mem_file *sys;
	struct rfs_saved s;
	uint8_t *msys;

	sys = add_file(fx, "sys.vhdx", SYS_SIZE, 0x11);
	desc_disk(fx, "sys", 1, "sys.vhdx");
	msys = model_of(fx, sys);
	fx_open(fx);

	assert_outcome(cmd(fx, "revert"), RFS_INVALID_STATE, EPERM);
	assert_status(fx, "32775 Invalid state for this operation\n");
	assert_outcome(cmd(fx, "commit"), RFS_INVALID_STATE, EPERM);
	assert_outcome(cmd(fx, "bogus"), RFS_NOT_SUPPORTED, EOPNOTSUPP);
	assert_status(fx, "32770 Not Supported\n");
	assert_outcome(rfs_vm_command(fx->vm, "", 0, true), RFS_NOT_SUPPORTED, EOPNOTSUPP);
	assert_outcome(cmd(fx, " \n"), RFS_NOT_SUPPORTED, EOPNOTSUPP);
	assert_outcome(cmd(fx, "failover now"), RFS_INVALID_PARAMETER, EINVAL);
	assert_status(fx, "32773 Invalid parameter\n");
	assert_outcome(cmd(fx, "fail\xff" "over"), RFS_INCORRECT_DATA_TYPE, EINVAL);
	assert_status(fx, "32776 Incorrect data type\n");
	assert_outcome(rfs_vm_command(fx->vm, "failover\0x", 10, true), RFS_INCORRECT_DATA_TYPE, EINVAL);
	memset(big, ' ', sizeof(big));
	memcpy(big, "failover", 8);
	assert_outcome(rfs_vm_command(fx->vm, big, RFS_CMD_MAX + 1, true), RFS_INCORRECT_DATA_TYPE, EINVAL);
	assert_outcome(rfs_vm_command(fx->vm, "failover", 8, false), RFS_ACCESS_DENIED, EACCES);
	assert_status(fx, "32769 Access Denied\n");
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_REPLICATING);
	assert_false(overlay_exists(fx, "sys"));
	assert_int_equal(hook_count(fx, &fx->n_changed), 0);
	/* the refused status is stored, in state 3 without a point */
	load_saved(fx, &s);
	assert_int_equal(s.state, RFS_STATE_REPLICATING);
	assert_int_equal(s.status, RFS_ACCESS_DENIED);
	assert_int_equal(s.ntips, 0);
	rfs_saved_free(&s);

	assert_outcome(cmd(fx, "InitiateFailover\r\n"), RFS_OK, 0);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_RECOVERED);
	write_pattern(fx, "sys", msys, SYS_SIZE, 0x10);
	assert_outcome(cmd(fx, "failover"), RFS_INVALID_STATE, EPERM);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_RECOVERED);
	assert_outcome(cmd(fx, "FAILOVER"), RFS_INVALID_STATE, EPERM);
	commit_done(fx);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_COMMITTED);
	assert_status(fx, "0 Completed with No Error\n");
	assert_true(rfs_vm_writable(fx->vm));
	assert_int_equal(count_changed(fx, "sys", false), 2); /* failover, commit */
	assert_int_equal(count_changed(fx, "sys", true), 0);
	load_saved(fx, &s);
	assert_int_equal(s.state, RFS_STATE_COMMITTED);
	assert_int_equal(s.status, RFS_OK);
	assert_int_equal(s.ntips, 1);
	assert_tip(&s, "sys", "sys.vhdx", 0x11);
	rfs_saved_free(&s);

	assert_outcome(cmd(fx, "revert"), RFS_INVALID_STATE, EPERM);
	assert_outcome(cmd(fx, "commit"), RFS_INVALID_STATE, EPERM);
	assert_outcome(cmd(fx, "failover"), RFS_INVALID_STATE, EPERM);
	assert_status(fx, "32775 Invalid state for this operation\n");
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_COMMITTED);
	assert_true(overlay_exists(fx, "sys"));
	assert_named_reads(fx, "sys", msys, SYS_SIZE);
	write_disk(fx, "sys", msys, 200 * KiB, 3000, 0x33);
	assert_named_reads(fx, "sys", msys, SYS_SIZE);

	rfs_vm_record(fx->vm, RFS_ACCESS_DENIED);
	assert_status(fx, "32769 Access Denied\n");
	load_saved(fx, &s);
	assert_int_equal(s.state, RFS_STATE_COMMITTED);
	assert_int_equal(s.status, RFS_ACCESS_DENIED);
	assert_int_equal(s.ntips, 1); /* a status store keeps the point */
	rfs_saved_free(&s);
	assert_replica_untouched();
	fx_close(fx);
}

/* Closing and opening the VM again (a remount) keeps state and data. */
static void test_reopen(void **state)
{
	struct fx *fx = *state;
	struct mem_file *sys, *data;
	uint8_t *msys, *mdata;

	two_disks(fx, &sys, &data);
	msys = model_of(fx, sys);
	mdata = model_of(fx, data);
	fx_open(fx);
	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	write_pattern(fx, "sys", msys, SYS_SIZE, 0x51);
	write_pattern(fx, "data", mdata, DATA_SIZE, 0x61);

	fx_reopen(fx);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_RECOVERED);
	assert_status(fx, "0 Completed with No Error\n");
	assert_true(rfs_vm_writable(fx->vm));
	assert_disks(fx, "data,sys");
	assert_named_reads(fx, "sys", msys, SYS_SIZE);
	assert_named_reads(fx, "data", mdata, DATA_SIZE);
	write_disk(fx, "sys", msys, 130 * KiB, 10, 0x71);

	commit_done(fx);
	fx_reopen(fx);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_COMMITTED);
	assert_true(rfs_vm_writable(fx->vm));
	assert_named_reads(fx, "sys", msys, SYS_SIZE);
	assert_named_reads(fx, "data", mdata, DATA_SIZE);
	assert_int_equal(hook_count(fx, &fx->n_reshaped), 0);
	assert_replica_untouched();
	fx_close(fx);
}

/* A reopened failed-over VM stays on its point when a newer one arrived
 * (chain = [new, old]); a refresh does not move it; revert moves it to the
 * newest point. */
static void test_point_kept(void **state)
{
	struct fx *fx = *state;
	struct mem_file *sys, *sys2;
	struct rfs_disk *d, *d2;
	struct rfs_saved s;
	uint8_t *msys;
	uint64_t fp;

	sys = add_file(fx, "sys.vhdx", SYS_SIZE, 0x11);
	desc_disk(fx, "sys", 1, "sys.vhdx");
	msys = model_of(fx, sys);
	fx_open(fx);
	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	write_pattern(fx, "sys", msys, SYS_SIZE, 0x24);
	fx_close(fx);

	sys2 = add_file(fx, "sys-2.avhdx", SYS_SIZE, 0x33);
	desc_disk(fx, "sys", 2, "sys-2.avhdx", "sys.vhdx");
	fx_open(fx);
	fx_forget_hooks(fx);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_RECOVERED);
	assert_true(rfs_vm_writable(fx->vm));
	assert_disks(fx, "sys");
	assert_named_reads(fx, "sys", msys, SYS_SIZE);
	load_saved(fx, &s);
	assert_int_equal(s.ntips, 1);
	assert_tip(&s, "sys", "sys.vhdx", 0x11);
	rfs_saved_free(&s);

	/* a rescan while failed over changes nothing */
	d = disk_get(fx, "sys");
	fp = fx_fingerprint(fx);
	assert_int_equal(rfs_vm_refresh(fx->vm, &fx->desc, fp), 0);
	assert_int_equal(rfs_vm_fingerprint(fx->vm), fp);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_RECOVERED);
	assert_named_reads(fx, "sys", msys, SYS_SIZE);
	d2 = disk_get(fx, "sys");
	assert_ptr_equal(d, d2);
	rfs_disk_put(d2);
	assert_int_equal(hook_count(fx, &fx->n_changed), 0);
	assert_int_equal(hook_count(fx, &fx->n_reshaped), 0);
	write_disk(fx, "sys", msys, 0, 512, 0x99);
	assert_named_reads(fx, "sys", msys, SYS_SIZE);

	/* revert: to the newest point, same disk object, content changed */
	assert_outcome(cmd(fx, "revert"), RFS_OK, 0);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_REPLICATING);
	assert_true(hook_count(fx, &fx->n_describe) >= 1);
	assert_disks(fx, "sys");
	d2 = disk_get(fx, "sys");
	assert_ptr_equal(d, d2); /* the front end's node stays valid */
	rfs_disk_put(d2);
	assert_false(rfs_disk_retired(d));
	assert_disk_reads(d, sys2->data, SYS_SIZE);
	assert_int_equal(count_changed(fx, "sys", true), 1);
	assert_int_equal(hook_count(fx, &fx->n_changed), 1);
	assert_int_equal(hook_count(fx, &fx->n_reshaped), 0); /* no disk came or went */
	rfs_disk_put(d);

	/* the next failover records the new point */
	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	load_saved(fx, &s);
	assert_int_equal(s.ntips, 1);
	assert_tip(&s, "sys", "sys-2.avhdx", 0x33);
	rfs_saved_free(&s);
	assert_named_reads(fx, "sys", sys2->data, SYS_SIZE);
	assert_replica_untouched();
	fx_close(fx);
}

/* A disk that appeared after the failover is not served until revert,
 * which adds it (reshaped) along with the newest point of the others. */
static void test_point_new_disk(void **state)
{
	struct fx *fx = *state;
	struct mem_file *sys, *sys2, *data;
	uint8_t *msys;

	sys = add_file(fx, "sys.vhdx", SYS_SIZE, 0x11);
	desc_disk(fx, "sys", 1, "sys.vhdx");
	msys = model_of(fx, sys);
	fx_open(fx);
	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	write_pattern(fx, "sys", msys, SYS_SIZE, 0x24);
	fx_close(fx);

	sys2 = add_file(fx, "sys-2.avhdx", SYS_SIZE, 0x33);
	data = add_file(fx, "data.vhdx", DATA_SIZE, 0x22);
	desc_disk(fx, "sys", 2, "sys-2.avhdx", "sys.vhdx");
	desc_disk(fx, "data", 1, "data.vhdx");
	fx_open(fx);
	fx_forget_hooks(fx);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_RECOVERED);
	assert_disks(fx, "sys");
	assert_named_reads(fx, "sys", msys, SYS_SIZE);
	assert_false(overlay_exists(fx, "data"));

	assert_outcome(cmd(fx, "revert"), RFS_OK, 0);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_REPLICATING);
	assert_disks(fx, "data,sys");
	assert_named_reads(fx, "sys", sys2->data, SYS_SIZE);
	assert_named_reads(fx, "data", data->data, DATA_SIZE);
	assert_int_equal(hook_count(fx, &fx->n_reshaped), 1);
	assert_int_equal(count_changed(fx, "sys", true), 1);
	assert_false(overlay_exists(fx, "sys"));
	assert_replica_untouched();
	fx_close(fx);
}

/* Migration: a format-1 vm.state (no point) with an overlay made at the
 * old tip, and a newer point in front: the point comes from the overlay's
 * header, the data is kept and format 2 is stored. */
static void test_migration(void **state)
{
	struct fx *fx = *state;
	struct mem_file *sys, *sys2;
	struct rfs_saved s;
	uint8_t *msys;
	char *text;

	sys = add_file(fx, "sys.vhdx", SYS_SIZE, 0x11);
	desc_disk(fx, "sys", 1, "sys.vhdx");
	msys = model_of(fx, sys);
	fx_open(fx);
	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	write_pattern(fx, "sys", msys, SYS_SIZE, 0x24);
	fx_close(fx);

	write_saved_raw(fx, "replicafs-vm-state 1\nstate 5\nstatus 0\n");
	load_saved(fx, &s);
	assert_int_equal(s.version, 1); /* what an older release left */
	assert_int_equal(s.ntips, 0);
	rfs_saved_free(&s);
	sys2 = add_file(fx, "sys-2.avhdx", SYS_SIZE, 0x33);
	desc_disk(fx, "sys", 2, "sys-2.avhdx", "sys.vhdx");

	fx_open(fx);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_RECOVERED);
	assert_status(fx, "0 Completed with No Error\n");
	assert_true(rfs_vm_writable(fx->vm));
	assert_named_reads(fx, "sys", msys, SYS_SIZE);
	load_saved(fx, &s);
	assert_int_equal(s.version, 2);
	assert_int_equal(s.state, RFS_STATE_RECOVERED);
	assert_true(s.has_status);
	assert_int_equal(s.status, RFS_OK);
	assert_int_equal(s.ntips, 1);
	assert_tip(&s, "sys", "sys.vhdx", 0x11);
	rfs_saved_free(&s);
	text = saved_text(fx);
	assert_true(!strncmp(text, "replicafs-vm-state 2\n", 21));
	free(text);

	/* and it stays there across a remount */
	fx_reopen(fx);
	assert_named_reads(fx, "sys", msys, SYS_SIZE);
	assert_outcome(cmd(fx, "revert"), RFS_OK, 0);
	assert_named_reads(fx, "sys", sys2->data, SYS_SIZE);
	assert_replica_untouched();
	fx_close(fx);
}

/* Migration of a format-1 vm.state without a status line: the migrated file
 * must not invent a status the VM never had. */
static void test_migration_no_status(void **state)
{
	struct fx *fx = *state;
	struct mem_file *sys;
	struct rfs_saved s;
	bool has_status;
	uint8_t *msys;
	char buf[64];

	sys = add_file(fx, "sys.vhdx", SYS_SIZE, 0x11);
	desc_disk(fx, "sys", 1, "sys.vhdx");
	msys = model_of(fx, sys);
	fx_open(fx);
	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	write_pattern(fx, "sys", msys, SYS_SIZE, 0x24);
	fx_close(fx);
	write_saved_raw(fx, "replicafs-vm-state 1\nstate 5\n");
	add_file(fx, "sys-2.avhdx", SYS_SIZE, 0x33);
	desc_disk(fx, "sys", 2, "sys-2.avhdx", "sys.vhdx");

	fx_open(fx);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_RECOVERED);
	assert_int_equal(rfs_vm_status(fx->vm, buf, sizeof(buf)), 0);
	assert_named_reads(fx, "sys", msys, SYS_SIZE);
	load_saved(fx, &s);
	assert_int_equal(s.version, 2);
	assert_int_equal(s.ntips, 1);
	assert_tip(&s, "sys", "sys.vhdx", 0x11);
	has_status = s.has_status;
	rfs_saved_free(&s);
	/* BUG (ctl/vm.c, load() -> store_saved()): the migration stores
	 * "status 0" although the format-1 file had no status line;
	 * store_saved() always sets has_status. Expected has_status false
	 * (and no status shown after a remount); got true, status 0. */
	assert_false(has_status);
	fx_reopen(fx);
	assert_int_equal(rfs_vm_status(fx->vm, buf, sizeof(buf)), 0);
	fx_close(fx);
}

/* Rescans in state 3: a new disk appears, a removed one is retired, a
 * changed chain waits for the open files and is applied once they close. */
static void test_refresh(void **state)
{
	struct fx *fx = *state;
	struct mem_file *sys, *sys2, *data;
	struct rfs_disk_attr attr;
	struct rfs_disk *d, *dd, *d2;
	char buf[64];

	sys = add_file(fx, "sys.vhdx", SYS_SIZE, 0x11);
	desc_disk(fx, "sys", 1, "sys.vhdx");
	fx_open(fx);
	d = disk_get(fx, "sys");

	/* a new disk */
	data = add_file(fx, "data.vhdx", DATA_SIZE, 0x22);
	desc_disk(fx, "data", 1, "data.vhdx");
	assert_int_equal(rfs_vm_refresh(fx->vm, &fx->desc, fx_fingerprint(fx)), 0);
	assert_disks(fx, "data,sys");
	assert_int_equal(hook_count(fx, &fx->n_reshaped), 1);
	assert_int_equal(hook_count(fx, &fx->n_changed), 0);
	assert_named_reads(fx, "data", data->data, DATA_SIZE);
	d2 = disk_get(fx, "sys");
	assert_ptr_equal(d, d2); /* unchanged disks are kept as they are */
	rfs_disk_put(d2);
	/* nothing changed: nothing happens */
	assert_int_equal(rfs_vm_refresh(fx->vm, &fx->desc, fx_fingerprint(fx)), 0);
	assert_int_equal(hook_count(fx, &fx->n_reshaped), 1);

	/* a removed disk is retired */
	dd = disk_get(fx, "data");
	assert_non_null(dd);
	desc_remove(fx, "data");
	remove_file(fx, "data.vhdx");
	assert_int_equal(rfs_vm_refresh(fx->vm, &fx->desc, fx_fingerprint(fx)), 0);
	assert_disks(fx, "sys");
	assert_int_equal(hook_count(fx, &fx->n_reshaped), 2);
	assert_true(rfs_disk_retired(dd));
	assert_int_equal(rfs_disk_read(dd, buf, sizeof(buf), 0), -ESTALE);
	assert_int_equal(rfs_disk_write(dd, buf, sizeof(buf), 0), -ESTALE);
	assert_int_equal(rfs_disk_attr(dd, &attr), -ESTALE);
	assert_int_equal(rfs_vm_disk_open(fx->vm, dd, false), -ESTALE);
	rfs_disk_put(dd);

	/* a new point while a file is open: -EBUSY, idle, then applied */
	assert_int_equal(rfs_vm_disk_open(fx->vm, d, false), 0);
	sys2 = add_file(fx, "sys-2.avhdx", SYS_SIZE, 0x33);
	desc_disk(fx, "sys", 2, "sys-2.avhdx", "sys.vhdx");
	assert_int_equal(rfs_vm_refresh(fx->vm, &fx->desc, fx_fingerprint(fx)), -EBUSY);
	assert_disk_reads(d, sys->data, SYS_SIZE);
	assert_int_equal(hook_count(fx, &fx->n_idle), 0);
	rfs_vm_disk_release(fx->vm, d);
	assert_int_equal(hook_count(fx, &fx->n_idle), 1);
	assert_int_equal(rfs_vm_refresh(fx->vm, &fx->desc, fx_fingerprint(fx)), 0);
	assert_int_equal(rfs_vm_fingerprint(fx->vm), fx_fingerprint(fx));
	assert_disks(fx, "sys");
	d2 = disk_get(fx, "sys");
	assert_ptr_equal(d, d2);
	rfs_disk_put(d2);
	assert_disk_reads(d, sys2->data, SYS_SIZE);
	assert_int_equal(count_changed(fx, "sys", true), 1);
	/* two more reshapes: the refresh that had to wait listed the new point
	 * (points/, SPEC §9), and the one that applied it changed what the
	 * disk reads (its partition table may differ) */
	assert_int_equal(hook_count(fx, &fx->n_reshaped), 4);
	/* the change is applied: closing a file later wakes nobody */
	assert_int_equal(rfs_vm_disk_open(fx->vm, d, false), 0);
	rfs_vm_disk_release(fx->vm, d);
	assert_int_equal(hook_count(fx, &fx->n_idle), 1);
	rfs_disk_put(d);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_REPLICATING);
	fx_close(fx);
}

/* The VM's folder is gone: retired only in state 3 with no open file. */
static void test_retire(void **state)
{
	struct fx *fx = *state;
	struct rfs_disk **list;
	struct rfs_disk *d;
	struct rfs_saved s;
	char buf[64];
	size_t n;

	add_file(fx, "sys.vhdx", SYS_SIZE, 0x11);
	desc_disk(fx, "sys", 1, "sys.vhdx");
	fx_open(fx);
	d = disk_get(fx, "sys");

	assert_int_equal(rfs_vm_disk_open(fx->vm, d, false), 0);
	assert_false(rfs_vm_retire(fx->vm));
	assert_int_equal(rfs_disk_read(d, buf, sizeof(buf), 0), 0);
	rfs_vm_disk_release(fx->vm, d);
	assert_int_equal(hook_count(fx, &fx->n_idle), 1); /* the store tries again */

	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	assert_false(rfs_vm_retire(fx->vm));
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_RECOVERED);
	assert_true(overlay_exists(fx, "sys"));
	assert_int_equal(rfs_vm_disk_open(fx->vm, d, true), 0);
	rfs_vm_disk_release(fx->vm, d);
	assert_outcome(cmd(fx, "revert"), RFS_OK, 0);

	/* state 3 without open files */
	assert_true(rfs_vm_retire(fx->vm));
	assert_true(rfs_disk_retired(d));
	assert_outcome(cmd(fx, "failover"), RFS_FILE_NOT_FOUND, ENOENT);
	assert_status(fx, "32779 File not found\n");
	assert_outcome(cmd(fx, "revert"), RFS_FILE_NOT_FOUND, ENOENT);
	assert_int_equal(rfs_vm_disk_open(fx->vm, d, false), -ESTALE);
	assert_int_equal(rfs_vm_disk_open(fx->vm, d, true), -ESTALE);
	assert_int_equal(rfs_disk_read(d, buf, sizeof(buf), 0), -ESTALE);
	assert_int_equal(rfs_vm_disks(fx->vm, &list, &n), 0);
	assert_int_equal(n, 0);
	free(list);
	assert_false(overlay_exists(fx, "sys"));
	/* a retired VM stores nothing more (its folder is gone) */
	load_saved(fx, &s);
	assert_int_equal(s.state, RFS_STATE_REPLICATING);
	assert_int_equal(s.status, RFS_OK);
	rfs_saved_free(&s);
	rfs_disk_put(d);
	fx_close(fx);
}

static bool timespec_after(struct timespec a, struct timespec b)
{
	return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

/* A disk whose files cannot be opened: state 8, not listed, commands 32777;
 * ctl/<vm>/errors names it, and clears (with a new date) once mended. */
static void test_broken_disk(void **state)
{
	struct fx *fx = *state;
	struct mem_file *sys, *data;
	char buf[64];

	char errs[256];
	struct timespec t0, t1;
	int len;

	two_disks(fx, &sys, &data);
	atomic_store(&sys->fail_open, true);
	fx_open(fx);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_CRITICAL);
	assert_disks(fx, "data");
	assert_false(rfs_vm_writable(fx->vm));
	assert_int_equal(rfs_vm_status(fx->vm, buf, sizeof(buf)), 0);
	/* errors: one line, the backend's words naming the file */
	len = rfs_vm_errors(fx->vm, errs, sizeof(errs));
	assert_int_equal(len, (int)strlen(errs));
	assert_non_null(strstr(errs, "sys"));
	assert_non_null(strstr(errs, "not an image (test)\n"));
	assert_ptr_equal(strchr(errs, '\n'), errs + strlen(errs) - 1);
	/* cut at a whole line when it does not fit */
	assert_int_equal(rfs_vm_errors(fx->vm, errs, 8), 0);
	t0 = rfs_vm_changed(fx->vm, RFS_VM_STATUS);
	assert_named_reads(fx, "data", data->data, DATA_SIZE);
	assert_outcome(cmd(fx, "failover"), RFS_NOT_AVAILABLE, ENODEV);
	assert_status(fx, "32777 System is not available\n");
	assert_true(timespec_after(rfs_vm_changed(fx->vm, RFS_VM_STATUS), t0));
	assert_outcome(cmd(fx, "revert"), RFS_NOT_AVAILABLE, ENODEV);
	assert_outcome(cmd(fx, "commit"), RFS_NOT_AVAILABLE, ENODEV);
	assert_outcome(cmd(fx, "nonsense"), RFS_NOT_SUPPORTED, EOPNOTSUPP);
	assert_false(overlay_exists(fx, "data"));
	fx_close(fx);

	/* broken as discovery found it: same */
	atomic_store(&sys->fail_open, false);
	fx->desc.disks[1].broken = true;
	snprintf(fx->desc.disks[1].reason, sizeof(fx->desc.disks[1].reason), "sys.vhdx: bad footer");
	fx->desc.broken = true;
	fx_open(fx);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_CRITICAL);
	assert_disks(fx, "data");
	assert_outcome(cmd(fx, "failover"), RFS_NOT_AVAILABLE, ENODEV);
	rfs_vm_errors(fx->vm, errs, sizeof(errs));
	assert_string_equal(errs, "sys.vhdx: bad footer\n");
	t0 = rfs_vm_changed(fx->vm, RFS_VM_STATE);
	t1 = rfs_vm_changed(fx->vm, RFS_VM_ERRORS);

	/* mended: the rescan brings it back, state 3 */
	fx->desc.disks[1].broken = false;
	fx->desc.disks[1].reason[0] = '\0';
	fx->desc.broken = false;
	assert_int_equal(rfs_vm_refresh(fx->vm, &fx->desc, fx_fingerprint(fx)), 0);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_REPLICATING);
	assert_disks(fx, "data,sys");
	assert_int_equal(hook_count(fx, &fx->n_reshaped), 1);
	/* mended: errors empty, and both dates moved */
	assert_int_equal(rfs_vm_errors(fx->vm, errs, sizeof(errs)), 0);
	assert_true(timespec_after(rfs_vm_changed(fx->vm, RFS_VM_ERRORS), t1));
	assert_true(timespec_after(rfs_vm_changed(fx->vm, RFS_VM_STATE), t0));
	t0 = rfs_vm_changed(fx->vm, RFS_VM_STATE);
	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	assert_true(timespec_after(rfs_vm_changed(fx->vm, RFS_VM_STATE), t0));
	fx_close(fx);
}

/* A failed-over VM one of whose disks broke: state 8, only revert is
 * allowed (an overlay exists) and it discards the overlays. */
static void test_broken_disk_revert(void **state)
{
	struct fx *fx = *state;
	struct mem_file *sys, *data;
	uint8_t *msys, *mdata;

	two_disks(fx, &sys, &data);
	msys = model_of(fx, sys);
	mdata = model_of(fx, data);
	fx_open(fx);
	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	write_pattern(fx, "sys", msys, SYS_SIZE, 0x31);
	write_pattern(fx, "data", mdata, DATA_SIZE, 0x41);
	fx_close(fx);

	atomic_store(&sys->fail_open, true);
	fx_open(fx);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_CRITICAL);
	assert_disks(fx, "data");
	/* machine.h: a broken disk elsewhere does not stop the others */
	assert_true(rfs_vm_writable(fx->vm));
	assert_named_reads(fx, "data", mdata, DATA_SIZE);
	assert_outcome(cmd(fx, "failover"), RFS_NOT_AVAILABLE, ENODEV);
	assert_outcome(cmd(fx, "commit"), RFS_NOT_AVAILABLE, ENODEV);
	assert_outcome(cmd(fx, "revert"), RFS_OK, 0);
	assert_status(fx, "0 Completed with No Error\n");
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_CRITICAL); /* still broken */
	assert_false(rfs_vm_writable(fx->vm));
	assert_named_reads(fx, "data", data->data, DATA_SIZE);
	assert_false(overlay_exists(fx, "data"));
	/* BUG (ctl/vm.c, do_revert() -> remove_overlays()): the overlay of
	 * the broken disk is left behind: remove_overlays() only walks the
	 * listed (servable) disks, so "sys.overlay" stays in the state folder
	 * in state 3. Expected false; got true. */
	assert_false(overlay_exists(fx, "sys"));
	assert_replica_untouched();
	fx_close(fx);
}

/* The only disk of a failed-over VM broke: its overlay still exists on
 * disk, so revert must be allowed (machine.h). */
static void test_broken_only_disk_revert(void **state)
{
	struct fx *fx = *state;
	struct mem_file *sys;
	uint8_t *msys;

	sys = add_file(fx, "sys.vhdx", SYS_SIZE, 0x11);
	desc_disk(fx, "sys", 1, "sys.vhdx");
	msys = model_of(fx, sys);
	fx_open(fx);
	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	write_pattern(fx, "sys", msys, SYS_SIZE, 0x31);
	fx_close(fx);

	atomic_store(&sys->fail_open, true);
	fx_open(fx);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_CRITICAL);
	assert_disks(fx, "");
	assert_true(overlay_exists(fx, "sys"));
	assert_outcome(cmd(fx, "commit"), RFS_NOT_AVAILABLE, ENODEV);
	/* BUG (ctl/vm.c, load(): has_overlay = any_overlay_file()): only the
	 * listed disks' overlays are looked for, so with its only disk broken
	 * the VM believes it has no overlay and revert is refused although
	 * "sys.overlay" exists. Expected {0, 0}; got {32777, ENODEV}. */
	assert_outcome(cmd(fx, "revert"), RFS_OK, 0);
	assert_false(overlay_exists(fx, "sys"));
	fx_close(fx);
}

/* A crash between a failover's overlays and its store (or in a revert
 * between its store and the removals) leaves state 3 and stray overlays:
 * the next open removes them and serves the replica. */
static void test_crash_strays(void **state)
{
	struct fx *fx = *state;
	struct mem_file *sys, *data;
	struct rfs_saved s;
	uint8_t *msys;
	int dfd, fd;

	two_disks(fx, &sys, &data);
	msys = model_of(fx, sys);
	fx_open(fx);
	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	write_pattern(fx, "sys", msys, SYS_SIZE, 0x17);
	fx_close(fx);

	dfd = vm_state_fd(fx);
	rfs_saved_init(&s);
	s.has_status = true;
	assert_int_equal(rfs_saved_store(dfd, &s), 0);
	fd = openat(dfd, "data.overlay.tmp", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	fx_open(fx);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_REPLICATING);
	assert_false(rfs_vm_writable(fx->vm));
	assert_false(overlay_exists(fx, "sys"));
	assert_false(overlay_exists(fx, "data"));
	assert_int_equal(faccessat(dfd, "data.overlay.tmp", F_OK, 0), -1);
	close(dfd);
	assert_named_reads(fx, "sys", sys->data, SYS_SIZE);
	assert_named_reads(fx, "data", data->data, DATA_SIZE);
	/* and a failover starts afresh */
	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	assert_named_reads(fx, "sys", sys->data, SYS_SIZE);
	fx_close(fx);
}

/* An unreadable vm.state: state 8, commands 32771, nothing touched. */
static void test_corrupt_saved(void **state)
{
	struct fx *fx = *state;
	struct mem_file *sys;
	char path[PATH_MAX], *text;
	struct rfs_disk *d;
	FILE *f;

	sys = add_file(fx, "sys.vhdx", SYS_SIZE, 0x11);
	desc_disk(fx, "sys", 1, "sys.vhdx");
	fx_open(fx);
	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	fx_close(fx);
	snprintf(path, sizeof(path), "%s/state/" VM_NAME "/vm.state", fx->root);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("replicafs-vm-state 2\nstate 5\ncrc 00000000\n", f);
	fclose(f);

	fx_open(fx);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_CRITICAL);
	assert_false(rfs_vm_writable(fx->vm));
	d = disk_get(fx, "sys");
	assert_non_null(d);
	assert_int_equal(rfs_vm_disk_open(fx->vm, d, true), -EROFS);
	rfs_disk_put(d);
	assert_named_reads(fx, "sys", sys->data, SYS_SIZE);
	assert_outcome(cmd(fx, "revert"), RFS_STATUS_UNKNOWN, EIO);
	assert_status(fx, "32771 Status is unknown\n");
	assert_outcome(cmd(fx, "failover"), RFS_STATUS_UNKNOWN, EIO);
	assert_outcome(cmd(fx, "bogus"), RFS_NOT_SUPPORTED, EOPNOTSUPP);
	assert_true(overlay_exists(fx, "sys")); /* kept for inspection */
	text = saved_text(fx);
	assert_string_equal(text, "replicafs-vm-state 2\nstate 5\ncrc 00000000\n");
	free(text);
	fx_close(fx);
}

/* A failover over replica files that are gone: 32779, nothing made. */
static void test_failover_replica_gone(void **state)
{
	struct fx *fx = *state;

	add_file(fx, "sys.vhdx", SYS_SIZE, 0x11);
	desc_disk(fx, "sys", 1, "sys.vhdx");
	fx_open(fx);
	remove_file(fx, "sys.vhdx");
	assert_outcome(cmd(fx, "failover"), RFS_FILE_NOT_FOUND, ENOENT);
	assert_status(fx, "32779 File not found\n");
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_REPLICATING);
	assert_false(rfs_vm_writable(fx->vm));
	assert_false(overlay_exists(fx, "sys"));
	assert_int_equal(hook_count(fx, &fx->n_changed), 0);
	fx_close(fx);
}

/* The replica at the point changed identity since the failover: the
 * overlay is not used (state 8, read-only, replica bytes); revert is
 * allowed and discards it. */
static void test_mismatch(void **state)
{
	struct fx *fx = *state;
	struct mem_file *sys;
	struct rfs_disk *d;
	uint8_t *msys;

	sys = add_file(fx, "sys.vhdx", SYS_SIZE, 0x11);
	desc_disk(fx, "sys", 1, "sys.vhdx");
	msys = model_of(fx, sys);
	fx_open(fx);
	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	write_pattern(fx, "sys", msys, SYS_SIZE, 0x17);
	fx_close(fx);

	memset(sys->id, 0x44, sizeof(sys->id)); /* no VM is open */
	fx_open(fx);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_CRITICAL);
	assert_false(rfs_vm_writable(fx->vm));
	assert_disks(fx, "sys");
	d = disk_get(fx, "sys");
	assert_int_equal(rfs_vm_disk_open(fx->vm, d, true), -EROFS);
	assert_int_equal(rfs_disk_write(d, msys, 512, 0), -EROFS);
	rfs_disk_put(d);
	assert_named_reads(fx, "sys", sys->data, SYS_SIZE);
	assert_true(overlay_exists(fx, "sys"));
	assert_outcome(cmd(fx, "commit"), RFS_NOT_AVAILABLE, ENODEV);
	assert_outcome(cmd(fx, "failover"), RFS_NOT_AVAILABLE, ENODEV);
	assert_outcome(cmd(fx, "revert"), RFS_OK, 0);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_REPLICATING);
	assert_false(overlay_exists(fx, "sys"));
	assert_named_reads(fx, "sys", sys->data, SYS_SIZE);
	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	assert_true(rfs_vm_writable(fx->vm));
	fx_close(fx);
}

/* ---- concurrency ---- */

/*
 * Each cycle has three phases, separated by barriers (no sleeps):
 *   1. the commander fails over while the workers do I/O (reads racing the
 *      overlays being attached; writes once the state is 5);
 *   2. state 5: the workers write and read their own regions;
 *   3. the commander reverts (retrying 32774 while files are open) while
 *      the workers do I/O; once they reach the barrier nothing is open, so
 *      the revert ends.
 * A thread that fails records why and keeps meeting the barriers.
 */
#define CONC_WORKERS 4
#define CONC_CYCLES 12
#define CONC_ITERS 30
#define CONC_REGION (16 * KiB)

struct conc {
	struct fx *fx;
	struct rfs_disk *disk;
	const uint8_t *replica;
	pthread_barrier_t phase;
	atomic_int failovers, reverts, busy;
};

struct worker {
	struct conc *c;
	int index;
	char error[256];
	unsigned writes, reads, phase2_writes;
	uint8_t *buf, *last;
	bool have_last;
};

/* One open, write (if writable) and read back, release. 0 or -1 (error set). */
static int worker_step(struct worker *w, unsigned tag)
{
	struct conc *c = w->c;
	uint64_t off = (uint64_t)w->index * CONC_REGION;
	char status[128];
	bool write, own;
	int r;

	write = rfs_vm_writable(c->fx->vm);
	r = rfs_vm_disk_open(c->fx->vm, c->disk, write);
	if (r == -EROFS && write) { /* reverted in between */
		write = false;
		r = rfs_vm_disk_open(c->fx->vm, c->disk, false);
	}
	if (r) {
		snprintf(w->error, sizeof(w->error), "open(%d) = %d", write, r);
		return -1;
	}
	if (write) {
		/* no revert can run while this file is open: the write lands */
		for (size_t k = 0; k < CONC_REGION; k++)
			w->last[k] = (uint8_t)(w->index * 31 + tag + k);
		r = (int)rfs_disk_write(c->disk, w->last, CONC_REGION, off);
		if (r != (int)CONC_REGION) {
			snprintf(w->error, sizeof(w->error), "tag %u: write = %d", tag, r);
			goto out_release;
		}
		w->have_last = true;
		w->writes++;
	}
	r = rfs_disk_read(c->disk, w->buf, CONC_REGION, off);
	own = w->have_last && !memcmp(w->buf, w->last, CONC_REGION);
	if (r || (write && !own) || (!own && memcmp(w->buf, c->replica + off, CONC_REGION))) {
		snprintf(w->error, sizeof(w->error),
			 "tag %u: read = %d, region is neither the replica nor the last write%s", tag, r,
			 write ? " (opened for writing)" : "");
		goto out_release;
	}
	w->reads++;
	rfs_vm_status(c->fx->vm, status, sizeof(status));
	(void)rfs_vm_state(c->fx->vm);
	rfs_vm_disk_release(c->fx->vm, c->disk);
	return 0;

out_release:
	rfs_vm_disk_release(c->fx->vm, c->disk);
	return -1;
}

static void worker_phase(struct worker *w, unsigned cycle, unsigned phase)
{
	for (unsigned i = 0; i < CONC_ITERS && !w->error[0]; i++) {
		unsigned before = w->writes;

		if (worker_step(w, (cycle * 3 + phase) * CONC_ITERS + i) == 0 && phase == 2)
			w->phase2_writes += w->writes - before;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct conc *c = w->c;

	w->buf = malloc(CONC_REGION);
	w->last = malloc(CONC_REGION);
	if (!w->buf || !w->last)
		snprintf(w->error, sizeof(w->error), "out of memory");
	for (unsigned cycle = 0; cycle < CONC_CYCLES; cycle++) {
		for (unsigned phase = 1; phase <= 3; phase++) {
			pthread_barrier_wait(&c->phase);
			worker_phase(w, cycle, phase);
		}
	}
	pthread_barrier_wait(&c->phase);
	free(w->buf);
	free(w->last);
	return NULL;
}

struct commander {
	struct conc *c;
	char error[256];
};

static void *commander_main(void *arg)
{
	struct commander *m = arg;
	struct conc *c = m->c;

	for (unsigned cycle = 0; cycle < CONC_CYCLES; cycle++) {
		struct rfs_outcome o;

		pthread_barrier_wait(&c->phase); /* phase 1: failover */
		o = rfs_vm_command(c->fx->vm, "failover", 8, true);
		if (!m->error[0] && o.code != RFS_OK)
			snprintf(m->error, sizeof(m->error), "cycle %u: failover = %d", cycle, o.code);
		else
			atomic_fetch_add(&c->failovers, 1);
		pthread_barrier_wait(&c->phase); /* phase 2: the workers write */
		pthread_barrier_wait(&c->phase); /* phase 3: revert */
		for (;;) {
			o = rfs_vm_command(c->fx->vm, "revert", 6, true);
			if (o.code == RFS_OK) {
				atomic_fetch_add(&c->reverts, 1);
				break;
			}
			if (o.code != RFS_IN_USE || o.err != EBUSY) {
				if (!m->error[0])
					snprintf(m->error, sizeof(m->error), "cycle %u: revert = %d/%d", cycle,
						 o.code, o.err);
				break;
			}
			atomic_fetch_add(&c->busy, 1);
		}
	}
	pthread_barrier_wait(&c->phase);
	return NULL;
}

/* Readers and writers on one disk while failover/revert cycles run: every
 * read is the replica or the reader's own last write, never a mix, and
 * writes through a file opened for writing always land. */
static void test_concurrency(void **state)
{
	struct fx *fx = *state;
	struct worker workers[CONC_WORKERS];
	pthread_t tid[CONC_WORKERS + 1];
	struct commander m = { 0 };
	struct conc c = { 0 };
	struct mem_file *sys;

	sys = add_file(fx, "sys.vhdx", SYS_SIZE, 0x11);
	desc_disk(fx, "sys", 1, "sys.vhdx");
	fx_open(fx);
	c.fx = fx;
	c.disk = disk_get(fx, "sys");
	c.replica = sys->pristine;
	assert_non_null(c.disk);
	assert_int_equal(pthread_barrier_init(&c.phase, NULL, CONC_WORKERS + 1), 0);
	m.c = &c;
	for (int i = 0; i < CONC_WORKERS; i++) {
		workers[i] = (struct worker){ .c = &c, .index = i };
		assert_int_equal(pthread_create(&tid[i], NULL, worker_main, &workers[i]), 0);
	}
	assert_int_equal(pthread_create(&tid[CONC_WORKERS], NULL, commander_main, &m), 0);
	for (int i = 0; i <= CONC_WORKERS; i++)
		pthread_join(tid[i], NULL);
	pthread_barrier_destroy(&c.phase);

	print_message("%d failover/revert cycles, %d busy reverts; writes/reads:", c.reverts, c.busy);
	for (int i = 0; i < CONC_WORKERS; i++)
		print_message(" %u/%u", workers[i].writes, workers[i].reads);
	print_message("\n");
	if (m.error[0])
		fail_msg("commands: %s", m.error);
	for (int i = 0; i < CONC_WORKERS; i++) {
		if (workers[i].error[0])
			fail_msg("worker %d: %s", i, workers[i].error);
		/* phase 2 is all state 5: every step wrote */
		assert_int_equal(workers[i].phase2_writes, CONC_CYCLES * CONC_ITERS);
		assert_int_equal(workers[i].reads, CONC_CYCLES * 3 * CONC_ITERS);
	}
	assert_int_equal(c.failovers, CONC_CYCLES);
	assert_int_equal(c.reverts, CONC_CYCLES);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_REPLICATING);
	assert_false(overlay_exists(fx, "sys"));
	assert_disk_reads(c.disk, sys->pristine, SYS_SIZE);
	assert_int_equal(count_changed(fx, "sys", false), CONC_CYCLES);
	assert_int_equal(count_changed(fx, "sys", true), CONC_CYCLES);
	assert_replica_untouched();
	rfs_disk_put(c.disk);
	fx_close(fx);
}

/* failover POINT, revert to the newest, a test VM next to the VM, a
 * point whose file vanished (32779), an unknown point (32773). */
static void test_points_and_test_vm(void **state)
{
	struct fx *fx = *state;
	struct mem_file *sys, *sys2;
	struct rfs_points *p;
	struct rfs_vm *t;
	struct rfs_saved s;
	char oldest[RFS_POINT_NAME_MAX + 16];

	sys = add_file(fx, "sys.vhdx", SYS_SIZE, 0x11);
	sys2 = add_file(fx, "sys-2.avhdx", SYS_SIZE, 0x33);
	desc_disk(fx, "sys", 2, "sys-2.avhdx", "sys.vhdx");
	fx_open(fx);
	p = rfs_vm_points(fx->vm);
	assert_non_null(p);
	assert_int_equal(rfs_points_count(p), 2);
	snprintf(oldest, sizeof(oldest), "failover %s", rfs_points_name_at(p, 1));
	rfs_points_put(p);

	assert_outcome(cmd(fx, "failover 1999-01-01T00:00:00Z"), RFS_INVALID_PARAMETER, EINVAL);
	assert_outcome(cmd(fx, oldest), RFS_OK, 0);
	assert_named_reads(fx, "sys", sys->data, SYS_SIZE);
	load_saved(fx, &s);
	assert_tip(&s, "sys", "sys.vhdx", 0x11);
	rfs_saved_free(&s);
	assert_outcome(cmd(fx, "revert"), RFS_OK, 0);
	assert_named_reads(fx, "sys", sys2->data, SYS_SIZE);

	/* a test VM over the oldest point; the VM fails over to the newest */
	assert_null(rfs_vm_test(fx->vm));
	memcpy(oldest, "test    ", 8);
	assert_outcome(cmd(fx, oldest), RFS_OK, 0);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_REPLICATING);
	t = rfs_vm_test(fx->vm);
	assert_non_null(t);
	assert_string_equal(rfs_vm_name(t), VM_NAME " - Test");
	assert_int_equal(rfs_vm_state(t), RFS_STATE_RECOVERED);
	assert_true(rfs_vm_writable(t));
	assert_null(rfs_vm_points(t));
	assert_outcome(cmd(fx, "test"), RFS_INVALID_STATE, EPERM);
	assert_outcome(rfs_vm_command(t, "failover", 8, true), RFS_INVALID_STATE, EPERM);
	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	assert_int_equal(faccessat(fx->state_fd, VM_NAME " - Test/vm.state", F_OK, 0), 0);
	/* revert written to the test VM removes it; the VM stays failed over */
	assert_outcome(rfs_vm_command(t, "revert\n", 7, true), RFS_OK, 0);
	assert_null(rfs_vm_test(fx->vm));
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_RECOVERED);
	assert_int_not_equal(faccessat(fx->state_fd, VM_NAME " - Test", F_OK, 0), 0);
	rfs_vm_put(t);
	assert_outcome(cmd(fx, "stop-test"), RFS_INVALID_STATE, EPERM);
	assert_outcome(cmd(fx, "revert"), RFS_OK, 0);

	/* the oldest point's file vanishes before the rescan: 32779, nothing moves */
	pthread_mutex_lock(&mem.lock);
	sys->path[0] = '\0';
	pthread_mutex_unlock(&mem.lock);
	memcpy(oldest, "failover", 8);
	assert_outcome(cmd(fx, oldest), RFS_FILE_NOT_FOUND, ENOENT);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_REPLICATING);
	assert_named_reads(fx, "sys", sys2->data, SYS_SIZE);
	fx_close(fx);
}

/* commit is a job: it copies every replica byte the overlay lacks (a zero
 * block of the replica stays a hole), stores state 6 standalone, and the
 * VM then reads the same with its replica gone (reopened from its state
 * folder alone). */
static void test_commit_job(void **state)
{
	struct fx *fx = *state;
	struct mem_file *sys, *data;
	uint8_t *msys, *mdata;
	struct rfs_saved s;

	two_disks(fx, &sys, &data);
	memset(data->data, 0, MEM_BLOCK); /* an unallocated block */
	memset(data->pristine, 0, MEM_BLOCK);
	msys = model_of(fx, sys);
	mdata = model_of(fx, data);
	fx_open(fx);
	assert_int_equal(rfs_vm_job(fx->vm, (char[64]){ 0 }, 64), 0); /* no job yet */
	assert_outcome(cmd(fx, "cancel"), RFS_INVALID_STATE, EPERM);
	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	write_pattern(fx, "sys", msys, SYS_SIZE, 0x51);
	assert_true(overlay_data_from(fx, "data", 0) < 0);

	commit_done(fx);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_COMMITTED);
	assert_status(fx, "0 Completed with No Error\n");
	assert_true(atomic_load(&mem.extents) > 0);
	load_saved(fx, &s);
	assert_int_equal(s.state, RFS_STATE_COMMITTED);
	assert_true(s.standalone);
	assert_int_equal(s.ntips, 2);
	rfs_saved_free(&s);
	/* the overlay holds the replica's data, not its zero block */
	assert_int_equal(overlay_data_from(fx, "data", 0), MEM_BLOCK);
	assert_named_reads(fx, "sys", msys, SYS_SIZE);
	assert_named_reads(fx, "data", mdata, DATA_SIZE);
	assert_replica_untouched();

	/* the replica goes (its bytes garbage, its files and disks gone) */
	memset(sys->data, 0xee, sys->size);
	memset(data->data, 0xee, data->size);
	assert_named_reads(fx, "data", mdata, DATA_SIZE);
	desc_remove(fx, "sys");
	desc_remove(fx, "data");
	fx_reopen(fx);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_COMMITTED);
	assert_disks(fx, "data,sys");
	assert_named_reads(fx, "sys", msys, SYS_SIZE);
	assert_named_reads(fx, "data", mdata, DATA_SIZE);
	write_disk(fx, "data", mdata, MEM_BLOCK + 10, 3000, 0x77);
	assert_named_reads(fx, "data", mdata, DATA_SIZE);
	assert_outcome(cmd(fx, "revert"), RFS_INVALID_STATE, EPERM);
	fx_reopen(fx);
	assert_named_reads(fx, "data", mdata, DATA_SIZE);

	/* an overlay of a committed VM missing: state 8, and no revert (the
	 * overlays are the VM's only copy) */
	{
		int dirfd = vm_state_fd(fx);

		assert_int_equal(renameat(dirfd, "data.overlay", dirfd, "data.overlay.away"), 0);
		fx_reopen(fx);
		assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_CRITICAL);
		assert_disks(fx, "sys");
		assert_outcome(cmd(fx, "revert"), RFS_NOT_AVAILABLE, ENODEV);
		assert_true(overlay_exists(fx, "sys"));
		assert_int_equal(renameat(dirfd, "data.overlay.away", dirfd, "data.overlay"), 0);
		close(dirfd);
	}
	fx_reopen(fx);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_COMMITTED);
	assert_named_reads(fx, "data", mdata, DATA_SIZE);
	assert_named_reads(fx, "sys", msys, SYS_SIZE);
	fx_close(fx);
}

/* While the job runs: state 12, disks writable, other commands 32774 (the
 * job's result then does not replace that status), cancel stops it (state
 * 5, nothing lost); a second commit completes. */
static void test_commit_cancel(void **state)
{
	struct fx *fx = *state;
	struct mem_file *sys, *data;
	uint8_t *msys, *mdata;
	struct rfs_saved s;
	char text[512];

	two_disks(fx, &sys, &data);
	msys = model_of(fx, sys);
	mdata = model_of(fx, data);
	fx_open(fx);
	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	write_pattern(fx, "data", mdata, DATA_SIZE, 0x31);

	atomic_store(&mem.read_delay_ms, 300);
	assert_outcome(cmd(fx, "CommitFailover"), RFS_JOB_STARTED, 0);
	assert_status(fx, "4096 Method Parameters Checked - Job Started\n");
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_FAILOVER_IN_PROGRESS);
	assert_true(rfs_vm_writable(fx->vm));
	assert_true(rfs_vm_job(fx->vm, text, sizeof(text)) > 0);
	assert_non_null(strstr(text, "JobState: 4\n"));
	assert_outcome(cmd(fx, "revert"), RFS_IN_USE, EBUSY);
	assert_outcome(cmd(fx, "commit"), RFS_IN_USE, EBUSY);
	assert_outcome(cmd(fx, "RequestStateChange"), RFS_OK, 0);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_RECOVERED);
	assert_status(fx, "0 Completed with No Error\n");
	assert_true(rfs_vm_job(fx->vm, text, sizeof(text)) > 0);
	assert_non_null(strstr(text, "JobState: 8\n"));
	assert_non_null(strstr(text, "ErrorCode: 0\n"));
	load_saved(fx, &s);
	assert_int_equal(s.state, RFS_STATE_RECOVERED);
	assert_false(s.standalone);
	rfs_saved_free(&s);
	atomic_store(&mem.read_delay_ms, 0);
	assert_named_reads(fx, "sys", msys, SYS_SIZE);
	assert_named_reads(fx, "data", mdata, DATA_SIZE);

	/* a command during the job replaces its 4096; the job's 0 does not
	 * replace that */
	atomic_store(&mem.read_delay_ms, 100);
	assert_outcome(cmd(fx, "commit"), RFS_JOB_STARTED, 0);
	assert_outcome(cmd(fx, "failover"), RFS_IN_USE, EBUSY);
	wait_job_end(fx, text, sizeof(text));
	assert_non_null(strstr(text, "JobState: 7\n"));
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_COMMITTED);
	assert_status(fx, "32774 System is in use\n");
	load_saved(fx, &s);
	assert_int_equal(s.state, RFS_STATE_COMMITTED);
	assert_int_equal(s.status, RFS_IN_USE);
	assert_true(s.standalone);
	rfs_saved_free(&s);
	atomic_store(&mem.read_delay_ms, 0);
	assert_named_reads(fx, "sys", msys, SYS_SIZE);
	assert_named_reads(fx, "data", mdata, DATA_SIZE);
	assert_replica_untouched();
	fx_close(fx);
}

/* Closing the VM (unmount) while its job runs cancels it: state 5 after
 * reopening, the data the same. */
static void test_commit_close(void **state)
{
	struct fx *fx = *state;
	struct mem_file *sys, *data;
	uint8_t *msys, *mdata;

	two_disks(fx, &sys, &data);
	msys = model_of(fx, sys);
	mdata = model_of(fx, data);
	fx_open(fx);
	assert_outcome(cmd(fx, "failover"), RFS_OK, 0);
	write_pattern(fx, "sys", msys, SYS_SIZE, 0x41);
	atomic_store(&mem.read_delay_ms, 200);
	assert_outcome(cmd(fx, "commit"), RFS_JOB_STARTED, 0);
	fx_reopen(fx);
	atomic_store(&mem.read_delay_ms, 0);
	assert_int_equal(rfs_vm_state(fx->vm), RFS_STATE_RECOVERED);
	assert_named_reads(fx, "sys", msys, SYS_SIZE);
	assert_named_reads(fx, "data", mdata, DATA_SIZE);
	assert_replica_untouched();
	fx_close(fx);
}

#define VM_TEST(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		VM_TEST(test_open_healthy),
		VM_TEST(test_failover),
		VM_TEST(test_seek_discard),
		VM_TEST(test_revert_in_use),
		VM_TEST(test_commit_and_refusals),
		VM_TEST(test_reopen),
		VM_TEST(test_point_kept),
		VM_TEST(test_point_new_disk),
		VM_TEST(test_migration),
		VM_TEST(test_migration_no_status),
		VM_TEST(test_refresh),
		VM_TEST(test_retire),
		VM_TEST(test_broken_disk),
		VM_TEST(test_broken_disk_revert),
		VM_TEST(test_broken_only_disk_revert),
		VM_TEST(test_crash_strays),
		VM_TEST(test_corrupt_saved),
		VM_TEST(test_failover_replica_gone),
		VM_TEST(test_mismatch),
		VM_TEST(test_concurrency),
		VM_TEST(test_points_and_test_vm),
		VM_TEST(test_commit_job),
		VM_TEST(test_commit_cancel),
		VM_TEST(test_commit_close),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
