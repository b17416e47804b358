/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl/vm.c - one replica VM: disks, overlays, saved state, commands.
 * The contract, the crash ordering and the lock order are in vm.h.
 */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "command.h"
#include "image.h"
#include "log.h"
#include "overlay.h"
#include "savedstate.h"

/* How long a command waits for another command of the same VM (32772). */
#define CMD_LOCK_TIMEOUT_S 30

struct vm_disk {
	char name[NAME_MAX + 1];     /* shown name, also the overlay's name */
	struct vhd_image *image;     /* owned; read-only replica chain */
	char **chain;                /* owned; its files, tip first */
	size_t chain_len;
	struct cow_source source;    /* reads @image; the overlay's lower layer */
	struct cow_overlay *overlay; /* io_lock; NULL unless failed over */
};

struct rfs_vm {
	char name[NAME_MAX + 1];
	struct rfs_vm_config cfg;
	struct vm_disk *disks;       /* the servable disks only */
	unsigned ndisks;

	pthread_mutex_t cmd_lock;    /* serialises commands */
	pthread_mutex_t open_lock;   /* guards the fields below it */
	pthread_cond_t closed;       /* signalled when nopen drops to 0 */
	struct rfs_saved saved;      /* state and last status, as shown (owns its tips) */
	struct rfs_saved on_disk;    /* cmd_lock; what vm.state holds (has_status false: unknown) */
	bool saved_unknown;          /* vm.state unreadable: commands get 32771 */
	bool broken;                 /* a disk cannot be served */
	bool mismatch;               /* an overlay belongs to another replica */
	bool has_overlay;            /* overlay files exist in the state folder */
	unsigned nopen;              /* open files over all disks */

	pthread_rwlock_t io_lock;    /* writer: attaching/detaching overlays */
};

static void free_paths(char **paths, size_t n)
{
	for (size_t k = 0; paths && k < n; k++)
		free(paths[k]);
	free(paths);
}

/* A copy of the @n paths @paths; NULL when out of memory. */
static char **copy_paths(char *const *paths, size_t n)
{
	char **copy = calloc(n, sizeof(*copy));

	for (size_t k = 0; copy && k < n; k++) {
		copy[k] = strdup(paths[k]);
		if (!copy[k]) {
			free_paths(copy, k);
			return NULL;
		}
	}
	return copy;
}

static int source_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	return vhd_image_read(ctx, buf, len, off);
}

/* Open STATE/<vm>, creating it when @create. Returns an fd or -errno. */
static int vm_state_dir(struct rfs_vm *vm, bool create)
{
	int fd;

	if (create && mkdirat(vm->cfg.state_root_fd, vm->name, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(vm->cfg.state_root_fd, vm->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static void overlay_identity(const struct vm_disk *disk, struct cow_identity *id)
{
	struct vhd_image_info info;

	vhd_image_get_info(disk->image, &info);
	memset(id, 0, sizeof(*id));
	memcpy(id->identifier, info.identifier, sizeof(id->identifier));
	id->virtual_size = info.virtual_size;
	snprintf(id->disk, sizeof(id->disk), "%s", disk->name);
}

static void notify_changed(struct rfs_vm *vm, bool content)
{
	for (unsigned d = 0; d < vm->ndisks; d++)
		if (vm->cfg.changed)
			vm->cfg.changed(vm->cfg.changed_arg, vm, d, content);
}

/* Close and forget every attached overlay (caller holds io_lock as writer). */
static void detach_overlays(struct rfs_vm *vm)
{
	for (unsigned d = 0; d < vm->ndisks; d++) {
		if (vm->disks[d].overlay)
			cow_close(vm->disks[d].overlay);
		vm->disks[d].overlay = NULL;
	}
}

/* Remove the overlay files of every disk; returns the first error. */
static int remove_overlays(struct rfs_vm *vm, int dirfd)
{
	int ret = 0;

	for (unsigned d = 0; d < vm->ndisks; d++) {
		int r = cow_remove(dirfd, vm->disks[d].name);

		if (r < 0) {
			rfs_log(LOG_ERR, "%s/%s: cannot remove overlay: %s", vm->name, vm->disks[d].name,
				strerror(-r));
			if (!ret)
				ret = r;
		}
	}
	return ret;
}

static bool any_overlay_file(struct rfs_vm *vm, int dirfd)
{
	for (unsigned d = 0; d < vm->ndisks; d++)
		if (cow_exists(dirfd, vm->disks[d].name))
			return true;
	return false;
}

/*
 * Bring the in-memory VM in line with its state folder at mount: load the
 * saved state, attach the overlays of a failed-over VM (checking they belong
 * to this replica), remove overlays a crash left behind in state 3.
 */
static void load_state(struct rfs_vm *vm)
{
	int dirfd, r;

	dirfd = vm_state_dir(vm, false); /* vm->saved: state 3 until loaded */
	if (dirfd == -ENOENT)
		return;
	if (dirfd < 0) {
		rfs_log(LOG_ERR, "%s: cannot open its state folder: %s", vm->name, strerror(-dirfd));
		vm->saved_unknown = true;
		return;
	}
	r = rfs_saved_load(dirfd, &vm->saved);
	if (r == 0) {
		/* Out of memory leaves on_disk unknown: the next status is stored. */
		(void)rfs_saved_copy(&vm->on_disk, &vm->saved);
	} else if (r != -ENOENT) {
		rfs_log(LOG_ERR, "%s: saved state vm.state cannot be read: %s", vm->name,
			r == -EBADMSG ? "corrupt content" : strerror(-r));
		vm->saved_unknown = true;
		vm->has_overlay = any_overlay_file(vm, dirfd);
		goto out_close;
	}

	if (vm->saved.state == RFS_STATE_REPLICATING) {
		/* Overlays (or half-made ".tmp" ones) left by a command a crash
		 * interrupted: state 3 owns none. Two unlinkat()s per disk. */
		if (any_overlay_file(vm, dirfd))
			rfs_log(LOG_INFO, "%s: removing overlays left by an interrupted command", vm->name);
		remove_overlays(vm, dirfd);
		goto out_close;
	}

	/* Failed over (5) or committed (6): every disk must have its overlay. */
	vm->has_overlay = any_overlay_file(vm, dirfd);
	for (unsigned d = 0; d < vm->ndisks; d++) {
		struct vm_disk *disk = &vm->disks[d];
		struct cow_identity id;

		overlay_identity(disk, &id);
		r = cow_open(dirfd, disk->name, &id, &disk->overlay);
		if (r < 0) {
			rfs_log(LOG_ERR, "%s/%s: overlay cannot be used: %s", vm->name, disk->name,
				r == -ESTALE ? "the replica disk changed identity or size since the failover"
				: r == -EUCLEAN ? "corrupt overlay header" : strerror(-r));
			disk->overlay = NULL;
			vm->mismatch = true;
		}
	}
	if (vm->mismatch)
		detach_overlays(vm);
out_close:
	close(dirfd);
}

int rfs_vm_open(const struct rfs_vm_desc *desc, const struct rfs_vm_config *cfg, struct rfs_vm **out)
{
	struct rfs_vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return -ENOMEM;
	vm->disks = calloc(desc->ndisks ? desc->ndisks : 1, sizeof(*vm->disks));
	if (!vm->disks) {
		free(vm);
		return -ENOMEM;
	}
	snprintf(vm->name, sizeof(vm->name), "%s", desc->name);
	vm->cfg = *cfg;
	vm->broken = desc->broken;
	pthread_mutex_init(&vm->cmd_lock, NULL);
	pthread_mutex_init(&vm->open_lock, NULL);
	pthread_cond_init(&vm->closed, NULL);
	pthread_rwlock_init(&vm->io_lock, NULL);
	rfs_saved_init(&vm->saved);
	rfs_saved_init(&vm->on_disk);

	for (size_t i = 0; i < desc->ndisks; i++) {
		const struct rfs_disk_desc *dd = &desc->disks[i];
		struct vm_disk *disk = &vm->disks[vm->ndisks];
		char err[512];
		int r;

		if (dd->broken || dd->chain_len == 0) {
			vm->broken = true;
			continue;
		}
		r = vhd_image_open((const char *const *)dd->chain, dd->chain_len, cfg->max_handles,
				   &disk->image, err, sizeof(err));
		if (r < 0) {
			rfs_log(LOG_ERR, "%s: disk %s cannot be opened: %s", vm->name, dd->name, err);
			vm->broken = true;
			continue;
		}
		disk->chain = copy_paths(dd->chain, dd->chain_len);
		if (!disk->chain) {
			vhd_image_close(disk->image);
			rfs_vm_close(vm);
			return -ENOMEM;
		}
		disk->chain_len = dd->chain_len;
		snprintf(disk->name, sizeof(disk->name), "%s", dd->name);
		disk->source.read = source_read;
		disk->source.ctx = disk->image;
		vm->ndisks++;
	}
	load_state(vm);
	*out = vm;
	return 0;
}

void rfs_vm_close(struct rfs_vm *vm)
{
	if (!vm)
		return;
	detach_overlays(vm);
	for (unsigned d = 0; d < vm->ndisks; d++) {
		vhd_image_close(vm->disks[d].image);
		free_paths(vm->disks[d].chain, vm->disks[d].chain_len);
	}
	pthread_rwlock_destroy(&vm->io_lock);
	pthread_cond_destroy(&vm->closed);
	pthread_mutex_destroy(&vm->open_lock);
	pthread_mutex_destroy(&vm->cmd_lock);
	rfs_saved_free(&vm->saved);
	rfs_saved_free(&vm->on_disk);
	free(vm->disks);
	free(vm);
}

const char *rfs_vm_name(const struct rfs_vm *vm)
{
	return vm->name;
}

/* May the disks be opened for writing? Caller holds open_lock. */
static bool disks_writable(const struct rfs_vm *vm)
{
	return !vm->saved_unknown && !vm->mismatch && rfs_state_writable(vm->saved.state);
}

/* The shown state; caller holds open_lock. */
static enum rfs_state shown_state(const struct rfs_vm *vm)
{
	if (vm->saved_unknown || vm->broken || vm->mismatch)
		return RFS_STATE_CRITICAL;
	return vm->saved.state;
}

enum rfs_state rfs_vm_state(struct rfs_vm *vm)
{
	enum rfs_state s;

	pthread_mutex_lock(&vm->open_lock);
	s = shown_state(vm);
	pthread_mutex_unlock(&vm->open_lock);
	return s;
}

int rfs_vm_status(struct rfs_vm *vm, char *buf, int size)
{
	int len = 0;

	pthread_mutex_lock(&vm->open_lock);
	if (vm->saved.has_status)
		len = rfs_result_format(vm->saved.status, buf, size);
	pthread_mutex_unlock(&vm->open_lock);
	return len;
}

/* Show @code as the status, in memory only; copy what is now shown into
 * @shown unless it is NULL (0, or -ENOMEM with @shown initialised). */
static int show_status(struct rfs_vm *vm, enum rfs_result code, struct rfs_saved *shown)
{
	int r = 0;

	pthread_mutex_lock(&vm->open_lock);
	vm->saved.has_status = true;
	vm->saved.status = code;
	if (shown)
		r = rfs_saved_copy(shown, &vm->saved);
	pthread_mutex_unlock(&vm->open_lock);
	return r;
}

/*
 * Show @code as the status and store state + status. Caller holds cmd_lock.
 * A failure to store is logged: the status stays in memory (the command's
 * outcome is already decided). The file is left alone when it is unreadable,
 * so that what is in it can still be inspected.
 */
static void record_status(struct rfs_vm *vm, enum rfs_result code)
{
	struct rfs_saved s;
	int dirfd, r;

	rfs_saved_init(&s);
	r = show_status(vm, code, &s);
	if (vm->saved_unknown)
		goto out_free;
	if (r == 0 && vm->on_disk.has_status && vm->on_disk.status == (int)code &&
	    vm->on_disk.state == s.state)
		goto out_free; /* the command stored exactly this already */
	dirfd = r < 0 ? r : vm_state_dir(vm, true);
	r = dirfd < 0 ? dirfd : rfs_saved_store(dirfd, &s);
	if (dirfd >= 0)
		close(dirfd);
	if (r < 0)
		rfs_log(LOG_WARNING, "%s: status %d not saved: %s", vm->name, code, strerror(-r));
	else if (rfs_saved_copy(&vm->on_disk, &s) < 0)
		rfs_saved_free(&vm->on_disk); /* unknown: the next status is stored */
out_free:
	rfs_saved_free(&s);
}

static int lock_commands(struct rfs_vm *vm)
{
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += CMD_LOCK_TIMEOUT_S;
	return pthread_mutex_timedlock(&vm->cmd_lock, &deadline);
}

void rfs_vm_record(struct rfs_vm *vm, enum rfs_result code)
{
	if (lock_commands(vm) != 0) {
		show_status(vm, code, NULL);
		return;
	}
	record_status(vm, code);
	pthread_mutex_unlock(&vm->cmd_lock);
}

static struct rfs_outcome outcome_of(enum rfs_result code)
{
	struct rfs_outcome o = { code, rfs_result_errno(code) };

	return o;
}

static struct rfs_outcome outcome_of_errno(int neg_errno)
{
	struct rfs_outcome o;

	o.code = rfs_result_from_errno(neg_errno, &o.err);
	return o;
}

/* Store @state with @status as vm.state (durably). Caller holds cmd_lock. */
static int store_state(struct rfs_vm *vm, int dirfd, enum rfs_state state, enum rfs_result status)
{
	struct rfs_saved s;
	int r;

	rfs_saved_init(&s);
	s.state = state;
	s.has_status = true;
	s.status = status;
	r = rfs_saved_store(dirfd, &s);
	if (r == 0 && rfs_saved_copy(&vm->on_disk, &s) < 0)
		rfs_saved_free(&vm->on_disk); /* unknown: the next status is stored */
	rfs_saved_free(&s);
	return r;
}

static void publish_state(struct rfs_vm *vm, enum rfs_state state, bool has_overlay)
{
	pthread_mutex_lock(&vm->open_lock);
	vm->saved.state = state;
	vm->has_overlay = has_overlay;
	pthread_mutex_unlock(&vm->open_lock);
}

/* Are the replica files of every disk still where they were found? An
 * overlay must not be started over a replica that is gone (32779). */
static int check_replica_files(struct rfs_vm *vm)
{
	for (unsigned d = 0; d < vm->ndisks; d++) {
		struct vm_disk *disk = &vm->disks[d];

		for (size_t k = 0; k < disk->chain_len; k++) {
			if (access(disk->chain[k], R_OK) < 0) {
				int r = -errno;

				rfs_log(LOG_ERR, "%s: %s: %s", vm->name, disk->chain[k], strerror(-r));
				return r;
			}
		}
	}
	return 0;
}

/* failover: new empty overlays, then state 5 (see vm.h for the ordering). */
static struct rfs_outcome do_failover(struct rfs_vm *vm)
{
	struct cow_overlay **ovs;
	unsigned made = 0;
	int dirfd, r;

	r = check_replica_files(vm);
	if (r < 0)
		return outcome_of_errno(r);
	ovs = calloc(vm->ndisks ? vm->ndisks : 1, sizeof(*ovs));
	if (!ovs)
		return outcome_of(RFS_OUT_OF_MEMORY);
	dirfd = vm_state_dir(vm, true);
	if (dirfd < 0) {
		r = dirfd;
		goto out_free;
	}
	remove_overlays(vm, dirfd); /* strays of an interrupted command */
	cow_wait_freed(); /* the space of a revert just before is needed now */
	for (; made < vm->ndisks; made++) {
		struct cow_identity id;

		overlay_identity(&vm->disks[made], &id);
		r = cow_create(dirfd, vm->disks[made].name, &id, &ovs[made]);
		if (r < 0) {
			rfs_log(LOG_ERR, "%s/%s: cannot create overlay: %s", vm->name,
				vm->disks[made].name, strerror(-r));
			goto out_undo;
		}
	}
	r = store_state(vm, dirfd, RFS_STATE_RECOVERED, RFS_OK);
	if (r < 0) {
		rfs_log(LOG_ERR, "%s: cannot store state: %s", vm->name, strerror(-r));
		goto out_undo;
	}

	pthread_rwlock_wrlock(&vm->io_lock);
	for (unsigned d = 0; d < vm->ndisks; d++)
		vm->disks[d].overlay = ovs[d];
	pthread_rwlock_unlock(&vm->io_lock);
	publish_state(vm, RFS_STATE_RECOVERED, true);
	notify_changed(vm, false);
	close(dirfd);
	free(ovs);
	return outcome_of(RFS_OK);

out_undo:
	for (unsigned d = 0; d < made; d++)
		cow_close(ovs[d]);
	remove_overlays(vm, dirfd);
	close(dirfd);
out_free:
	free(ovs);
	return outcome_of_errno(r);
}

/* Wait (bounded) until no disk of the VM is open; caller holds open_lock.
 * The kernel sends RELEASE asynchronously after close(2), so a file closed
 * just before "echo revert" may still be counted for a moment. */
static bool wait_unused(struct rfs_vm *vm)
{
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += vm->cfg.open_wait_ms / 1000;
	deadline.tv_nsec += (long)(vm->cfg.open_wait_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	while (vm->nopen > 0)
		if (pthread_cond_timedwait(&vm->closed, &vm->open_lock, &deadline) == ETIMEDOUT)
			break;
	return vm->nopen == 0;
}

/* revert: state 3 first, then the overlays go (see vm.h for the ordering).
 * Holds open_lock throughout so that no file is opened in between. */
static struct rfs_outcome do_revert(struct rfs_vm *vm)
{
	struct rfs_outcome o = outcome_of(RFS_OK);
	int dirfd, r;

	dirfd = vm_state_dir(vm, true);
	if (dirfd < 0)
		return outcome_of_errno(dirfd);
	pthread_mutex_lock(&vm->open_lock);
	if (!wait_unused(vm)) {
		o = outcome_of(RFS_IN_USE);
		goto out_unlock;
	}
	r = store_state(vm, dirfd, RFS_STATE_REPLICATING, RFS_OK);
	if (r < 0) {
		rfs_log(LOG_ERR, "%s: cannot store state: %s", vm->name, strerror(-r));
		o = outcome_of_errno(r);
		goto out_unlock;
	}
	/* Names first, durably; then the descriptors. Every close is left to
	 * the background closer (overlay.c: its cost grows with the overlay),
	 * and queueing them after the folder's fsync keeps that work out of
	 * this command's own disk waits. A failure to remove leaves strays,
	 * removed at the next mount. No file is open (wait_unused), so no I/O
	 * runs on the overlays while they go. */
	pthread_rwlock_wrlock(&vm->io_lock);
	remove_overlays(vm, dirfd);
	detach_overlays(vm);
	pthread_rwlock_unlock(&vm->io_lock);
	vm->saved.state = RFS_STATE_REPLICATING;
	vm->mismatch = false;
	vm->has_overlay = false;
	notify_changed(vm, true);
out_unlock:
	pthread_mutex_unlock(&vm->open_lock);
	close(dirfd);
	return o;
}

static struct rfs_outcome do_commit(struct rfs_vm *vm)
{
	int dirfd, r;

	dirfd = vm_state_dir(vm, true);
	if (dirfd < 0)
		return outcome_of_errno(dirfd);
	r = store_state(vm, dirfd, RFS_STATE_COMMITTED, RFS_OK);
	close(dirfd);
	if (r < 0)
		return outcome_of_errno(r);
	publish_state(vm, RFS_STATE_COMMITTED, true);
	notify_changed(vm, false);
	return outcome_of(RFS_OK);
}

static struct rfs_outcome run_command(struct rfs_vm *vm, const char *buf, size_t len, bool authorised)
{
	enum rfs_state cur, next;
	enum rfs_result code;
	enum rfs_verb verb;
	bool has_overlay;

	if (!authorised)
		return outcome_of(RFS_ACCESS_DENIED);
	code = rfs_parse_command(buf, len, &verb);
	if (code != RFS_OK)
		return outcome_of(code);
	if (vm->saved_unknown)
		return outcome_of(RFS_STATUS_UNKNOWN);

	pthread_mutex_lock(&vm->open_lock);
	cur = shown_state(vm);
	has_overlay = vm->has_overlay;
	pthread_mutex_unlock(&vm->open_lock);
	code = rfs_transition(cur, has_overlay, verb, &next);
	if (code != RFS_OK)
		return outcome_of(code);

	rfs_log(LOG_INFO, "%s: %s (state %d -> %d)", vm->name, rfs_verb_name(verb), cur, next);
	switch (verb) {
	case RFS_VERB_FAILOVER:
		return do_failover(vm);
	case RFS_VERB_REVERT:
		return do_revert(vm);
	case RFS_VERB_COMMIT:
		return do_commit(vm);
	}
	return outcome_of(RFS_NOT_SUPPORTED);
}

struct rfs_outcome rfs_vm_command(struct rfs_vm *vm, const char *buf, size_t len, bool authorised)
{
	struct rfs_outcome o;

	if (lock_commands(vm) != 0) {
		/* Another command holds the VM: shown, not stored (that is its job). */
		show_status(vm, RFS_TIMEOUT, NULL);
		return outcome_of(RFS_TIMEOUT);
	}
	o = run_command(vm, buf, len, authorised);
	if (o.code != RFS_OK && o.code != RFS_JOB_STARTED)
		rfs_log(LOG_WARNING, "%s: command refused: %d %s", vm->name, o.code,
			rfs_result_name(o.code));
	record_status(vm, o.code);
	pthread_mutex_unlock(&vm->cmd_lock);
	return o;
}

unsigned rfs_vm_ndisks(const struct rfs_vm *vm)
{
	return vm->ndisks;
}

const char *rfs_vm_disk_name(const struct rfs_vm *vm, unsigned d)
{
	return vm->disks[d].name;
}

int rfs_vm_disk_attr(struct rfs_vm *vm, unsigned d, struct rfs_disk_attr *attr)
{
	struct vm_disk *disk = &vm->disks[d];
	struct vhd_image_info info;
	int r;

	r = vhd_image_stat(disk->image, &info);
	if (r < 0)
		vhd_image_get_info(disk->image, &info);
	attr->size = info.virtual_size;
	attr->allocated = info.allocated_bytes;
	attr->mtime = info.mtime;
	attr->ctime = info.ctime;

	pthread_mutex_lock(&vm->open_lock);
	attr->writable = disks_writable(vm);
	pthread_mutex_unlock(&vm->open_lock);

	pthread_rwlock_rdlock(&vm->io_lock);
	if (disk->overlay) {
		uint64_t held;
		struct timespec mtime;
		bool written;

		if (cow_stat(disk->overlay, &held, &mtime, &written) == 0) {
			attr->allocated += held;
			if (written) {
				attr->mtime = mtime;
				attr->ctime = mtime;
			}
		}
	}
	pthread_rwlock_unlock(&vm->io_lock);
	return 0;
}

uint64_t rfs_vm_disk_size(const struct rfs_vm *vm, unsigned d)
{
	struct vhd_image_info info;

	vhd_image_get_info(vm->disks[d].image, &info);
	return info.virtual_size;
}

int rfs_vm_disk_open(struct rfs_vm *vm, unsigned d, bool write)
{
	int ret = 0;

	pthread_mutex_lock(&vm->open_lock);
	if (write && !disks_writable(vm)) {
		ret = -EROFS;
	} else {
		vm->nopen++;
	}
	pthread_mutex_unlock(&vm->open_lock);
	return ret;
}

void rfs_vm_disk_release(struct rfs_vm *vm, unsigned d)
{
	pthread_mutex_lock(&vm->open_lock);
	if (--vm->nopen == 0)
		pthread_cond_broadcast(&vm->closed);
	pthread_mutex_unlock(&vm->open_lock);
}

int rfs_vm_disk_read(struct rfs_vm *vm, unsigned d, void *buf, size_t len, uint64_t off)
{
	struct vm_disk *disk = &vm->disks[d];
	int r;

	pthread_rwlock_rdlock(&vm->io_lock);
	if (disk->overlay)
		r = cow_read(disk->overlay, &disk->source, buf, len, off);
	else
		r = vhd_image_read(disk->image, buf, len, off);
	pthread_rwlock_unlock(&vm->io_lock);
	return r;
}

ssize_t rfs_vm_disk_write(struct rfs_vm *vm, unsigned d, const void *buf, size_t len, uint64_t off)
{
	struct vm_disk *disk = &vm->disks[d];
	ssize_t r = -EROFS;

	pthread_rwlock_rdlock(&vm->io_lock);
	if (disk->overlay)
		r = cow_write(disk->overlay, &disk->source, buf, len, off);
	pthread_rwlock_unlock(&vm->io_lock);
	return r;
}

int rfs_vm_disk_sync(struct rfs_vm *vm, unsigned d, bool datasync)
{
	struct vm_disk *disk = &vm->disks[d];
	int r = 0;

	pthread_rwlock_rdlock(&vm->io_lock);
	if (disk->overlay)
		r = cow_sync(disk->overlay, datasync);
	pthread_rwlock_unlock(&vm->io_lock);
	return r;
}
