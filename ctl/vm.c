// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl/vm.c - one replica VM's life cycle: opening its disks at their point,
 * its saved state, its commands, and the rescans that change its disks.
 * The contract, the crash ordering and the lock order are in vm.h.
 */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "command.h"
#include "commit.h"
#include "job.h"
#include "log.h"
#include "overlay.h"
#include "owner.h"
#include "points.h"
#include "savedstate.h"
#include "util.h"

/* How long a command waits for another command of the same VM (32772). */
#define CMD_LOCK_TIMEOUT_S 30

struct rfs_vm {
	/* immutable after rfs_vm_open() */
	char name[NAME_MAX + 1];
	char dir[PATH_MAX];          /* its folder in the replica */
	struct rfs_vm_config cfg;
	const struct rfs_backend *be;
	unsigned refs;               /* atomic */

	pthread_mutex_t cmd_lock;    /* serialises commands and refreshes; guards: */
	int lock_fd;                 /* STATE/<vm>/owner, locked while we own the VM; -1 */
	struct rfs_saved on_disk;    /* what vm.state holds (has_status false: unknown) */
	uint64_t fp;                 /* folder fingerprint the disks follow (atomic;
				      * written under cmd_lock) */
	bool stale;                  /* the folder changed while the disks could not follow */
	bool reshape;                /* the disk list changed: tell the front end */
	char busy[2 * NAME_MAX + 48]; /* why the last command got 32774: "vms/<vm>/<disk>.img
				       * is open", or "" */

	pthread_mutex_t open_lock;   /* guards the fields below */
	pthread_cond_t closed;       /* signalled when nopen drops to 0 */
	enum rfs_state state;        /* stored state, as shown through the rules */
	bool has_status;             /* status: the last command's result */
	enum rfs_result status;
	unsigned status_gen;         /* counts the statuses shown (a job's result replaces
				      * only its own 4096) */
	struct rfs_job *job;         /* the current or last job (ctl/<vm>/job); replaced
				      * under cmd_lock too */
	struct rfs_vm_facts facts;   /* what else the shown state depends on */
	bool has_overlay;            /* overlay files exist in the state folder */
	bool retired;                /* left the tree */
	bool local_status;           /* not owner: a command was refused here, its
				      * status is shown rather than the owner's */
	bool owner;                  /* we hold the owner lock and serve the VM (SPEC §8);
				      * also read atomically */
	unsigned nopen;              /* open files over all disks */
	struct rfs_disk **disks;     /* the servable disks, sorted by name */
	unsigned ndisks;
	char **known;                /* every disk name of the description, broken
				      * ones too: the overlays a revert removes */
	unsigned nknown;
	char *errs_disks;            /* cmd_lock (or open): lines of the last build_disks() */
	char *errs_overlays;         /* cmd_lock (or open): lines of attach_overlays() */

	pthread_mutex_t shown_lock;  /* innermost; guards what the ctl files show: */
	char *errors;                /* ctl/<vm>/errors: errs_disks + errs_overlays */
	enum rfs_state noted_state;  /* the shown state at times[RFS_VM_STATE] */
	struct timespec times[RFS_VM_NTEXTS]; /* when each ctl file last changed */
	struct rfs_points *points;   /* the folder's recovery points (ctl/points.h),
				      * replaced under cmd_lock and open_lock */
	struct rfs_vm *test;         /* its test VM (SPEC §9), one reference, or NULL;
				      * set under cmd_lock and open_lock */
	struct rfs_vm *test_of;      /* a test VM: its VM (not counted: that VM
				      * holds this one); immutable once set */
};

/* --- what the ctl files show, and when it changed -------------------------- */

/* Ctl file @which changed now. */
static void touch(struct rfs_vm *vm, enum rfs_vm_text which)
{
	pthread_mutex_lock(&vm->shown_lock);
	clock_gettime(CLOCK_REALTIME, &vm->times[which]);
	pthread_mutex_unlock(&vm->shown_lock);
}

/* The shown state is now @s: its time moves if it differs from the last
 * one noted. Any lock may be held (shown_lock is innermost). */
static void note_state(struct rfs_vm *vm, enum rfs_state s)
{
	pthread_mutex_lock(&vm->shown_lock);
	if (s != vm->noted_state) {
		vm->noted_state = s;
		clock_gettime(CLOCK_REALTIME, &vm->times[RFS_VM_STATE]);
	}
	pthread_mutex_unlock(&vm->shown_lock);
}

/* Append one line to the error list *@list, and log it in the same words
 * (unless @logged: discovery said it already). Lines that do not fit
 * memory are dropped (the log keeps them). */
static void add_error(struct rfs_vm *vm, char **list, bool logged, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void add_error(struct rfs_vm *vm, char **list, bool logged, const char *fmt, ...)
{
	size_t len = *list ? strlen(*list) : 0;
	char line[1024], *grown;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (!logged)
		rfs_log(LOG_ERR, "VM %s: %s", vm->name, line);
	grown = realloc(*list, len + strlen(line) + 2);
	if (!grown)
		return;
	sprintf(grown + len, "%s\n", line);
	*list = grown;
}

/* ctl/<vm>/errors is now errs_disks + errs_overlays; its time moves if
 * that differs from what it showed. */
static void publish_errors(struct rfs_vm *vm)
{
	const char *a = vm->errs_disks ? vm->errs_disks : "";
	const char *b = vm->errs_overlays ? vm->errs_overlays : "";
	char *text = NULL;

	if ((*a || *b) && asprintf(&text, "%s%s", a, b) < 0)
		return;
	pthread_mutex_lock(&vm->shown_lock);
	if (strcmp(text ? text : "", vm->errors ? vm->errors : "") != 0) {
		char *old = vm->errors;

		vm->errors = text;
		text = old;
		clock_gettime(CLOCK_REALTIME, &vm->times[RFS_VM_ERRORS]);
	}
	pthread_mutex_unlock(&vm->shown_lock);
	free(text);
}

struct timespec rfs_vm_changed(struct rfs_vm *vm, enum rfs_vm_text which)
{
	struct timespec t;

	pthread_mutex_lock(&vm->shown_lock);
	t = vm->times[which];
	pthread_mutex_unlock(&vm->shown_lock);
	return t;
}

int rfs_vm_errors(struct rfs_vm *vm, char *buf, int size)
{
	int len;

	pthread_mutex_lock(&vm->shown_lock);
	len = snprintf(buf, (size_t)size, "%s", vm->errors ? vm->errors : "");
	pthread_mutex_unlock(&vm->shown_lock);
	if (len >= size) { /* cut at the last whole line */
		char *nl = memrchr(buf, '\n', (size_t)size - 1);

		len = nl ? (int)(nl - buf) + 1 : 0;
		buf[len] = '\0';
	}
	return len;
}

/* --- state folder and saved state ----------------------------------------- */

/* Open STATE/<vm>, creating it when @create. Returns an fd or -errno. */
static int vm_state_dir(struct rfs_vm *vm, bool create)
{
	int fd;

	if (create && mkdirat(vm->cfg.state_root_fd, vm->name, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(vm->cfg.state_root_fd, vm->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Store @state and @status, and the point (@tips: the disks' current tips;
 * else none), durably; on success vm.state and on_disk agree. Caller holds
 * cmd_lock. */
static int store_saved(struct rfs_vm *vm, int dirfd, enum rfs_state state, bool has_status,
		       enum rfs_result status, bool tips)
{
	struct rfs_saved s;
	int r;

	rfs_saved_init(&s);
	s.state = state;
	s.has_status = has_status;
	s.status = has_status ? status : RFS_OK;
	for (unsigned d = 0; tips && d < vm->ndisks; d++) {
		struct cow_identity id;
		size_t n;
		char *const *chain = rfs_disk_chain(vm->disks[d], &n);

		rfs_disk_identity(vm->disks[d], &id);
		r = rfs_saved_set_tip(&s, rfs_disk_name(vm->disks[d]), strrchr(chain[0], '/') + 1,
				      id.identifier);
		if (r < 0)
			goto out_free;
	}
	r = rfs_saved_store(dirfd, &s);
	if (r == 0) {
		rfs_saved_free(&vm->on_disk);
		vm->on_disk = s;
		return 0;
	}
out_free:
	rfs_saved_free(&s);
	return r;
}

/* --- overlays --------------------------------------------------------------- */

static void notify_changed(struct rfs_vm *vm, bool content)
{
	for (unsigned d = 0; d < vm->ndisks; d++)
		if (vm->cfg.hooks.changed)
			vm->cfg.hooks.changed(vm->cfg.hooks.arg, vm, vm->disks[d], content);
}

/* Close and forget every attached overlay. */
static void detach_overlays(struct rfs_vm *vm)
{
	for (unsigned d = 0; d < vm->ndisks; d++) {
		struct cow_overlay *ov = rfs_disk_set_overlay(vm->disks[d], NULL);

		if (ov)
			cow_close(ov);
	}
}

/* Remove the overlay files of every disk the VM knows (a broken disk's
 * too); returns the first error. */
static int remove_overlays(struct rfs_vm *vm, int dirfd)
{
	int ret = 0;

	for (unsigned d = 0; d < vm->nknown; d++) {
		const char *name = vm->known[d];
		int r = cow_remove(dirfd, name);

		if (r < 0) {
			rfs_log(LOG_ERR, "%s/%s: cannot remove overlay: %s", vm->name, name, strerror(-r));
			if (!ret)
				ret = r;
		}
	}
	return ret;
}

static bool any_overlay_file(struct rfs_vm *vm, int dirfd)
{
	for (unsigned d = 0; d < vm->nknown; d++)
		if (cow_exists(dirfd, vm->known[d]))
			return true;
	return false;
}

static void free_known(char **known, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(known[i]);
	free(known);
}

/* Remember every disk name of @desc. 0 or -ENOMEM (the old list stays). */
static int set_known(struct rfs_vm *vm, const struct rfs_vm_desc *desc)
{
	char **known = calloc(desc->ndisks ? desc->ndisks : 1, sizeof(*known));

	for (size_t i = 0; known && i < desc->ndisks; i++) {
		known[i] = strdup(desc->disks[i].name);
		if (!known[i]) {
			free_known(known, (unsigned)i);
			known = NULL;
		}
	}
	if (!known)
		return -ENOMEM;
	free_known(vm->known, vm->nknown);
	vm->known = known;
	vm->nknown = (unsigned)desc->ndisks;
	return 0;
}

/* Attach the overlay of every disk (failed over or committed). A disk whose
 * overlay cannot be used makes the VM "mismatch" (state 8, revert allowed). */
static void attach_overlays(struct rfs_vm *vm, int dirfd)
{
	free(vm->errs_overlays);
	vm->errs_overlays = NULL;
	for (unsigned d = 0; d < vm->ndisks; d++) {
		struct rfs_disk *disk = vm->disks[d];
		struct cow_overlay *ov;
		struct cow_identity id;
		int r;

		rfs_disk_identity(disk, &id);
		r = cow_open(dirfd, rfs_disk_name(disk), &id, &ov);
		if (r < 0) {
			size_t n;
			const char *tip = strrchr(rfs_disk_chain(disk, &n)[0], '/') + 1;

			if (r == -ESTALE)
				add_error(vm, &vm->errs_overlays, false,
					  "%s: replica replaced under an overlay: it is not the disk %s.img "
					  "was failed over on (identity or size changed); revert discards "
					  "the overlay", tip, rfs_disk_name(disk));
			else
				add_error(vm, &vm->errs_overlays, false, "%s.overlay: the overlay of %s "
					  "cannot be used: %s", rfs_disk_name(disk), tip,
					  r == -EUCLEAN ? "its header is corrupt" : strerror(-r));
			vm->facts.mismatch = true;
			continue;
		}
		rfs_disk_set_overlay(disk, ov);
	}
	if (vm->facts.mismatch)
		detach_overlays(vm);
	publish_errors(vm);
}

/* --- building disks -------------------------------------------------------- */

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/*
 * The level of @dd's chain a failed-over disk sits on (0 = the tip). From
 * the saved point when it records one; for a format-1 vm.state, the level
 * whose identifier the overlay's header records (the migration). -ENOENT
 * when the point's file is no longer in the chain; -ENODATA for a disk that
 * the point does not have (it appeared after the failover).
 */
static int point_level(struct rfs_vm *vm, int dirfd, const struct rfs_disk_desc *dd, size_t *level)
{
	const struct rfs_saved_tip *tip = rfs_saved_find_tip(&vm->on_disk, dd->name);
	struct cow_identity id;
	uint8_t file_id[16];

	for (size_t k = 0; tip && k < dd->chain_len; k++) {
		if (strcmp(base_name(dd->chain[k]), tip->file) == 0) {
			*level = k;
			return 0;
		}
	}
	if (!tip && vm->on_disk.ntips > 0)
		return -ENODATA;
	if (tip || dirfd < 0 || cow_peek(dirfd, dd->name, &id) < 0)
		return -ENOENT;
	for (size_t k = 0; k < dd->chain_len; k++) {
		if (vm->be->identify(dd->chain[k], file_id) == 0 &&
		    memcmp(file_id, id.identifier, sizeof(file_id)) == 0) {
			*level = k;
			return 0;
		}
	}
	return -ENOENT;
}

/* Open the chain of @dd from @level down. 0, -ENOMEM, or another -errno
 * (logged) for a disk that cannot be served. */
static int open_chain(struct rfs_vm *vm, const struct rfs_disk_desc *dd, size_t level, void **img,
		      uint64_t *sig)
{
	char err[512];
	int r;

	r = vm->be->open((const char *const *)dd->chain + level, dd->chain_len - level,
			 vm->cfg.max_handles, img, err, sizeof(err));
	if (r < 0) {
		add_error(vm, &vm->errs_disks, false, "%s", err);
		return r;
	}
	*sig = level ? 0 : dd->sig;
	if (level)
		rfs_discover_chain_sig(dd->chain + level, dd->chain_len - level, sig);
	return 0;
}

static struct rfs_disk *find_disk(struct rfs_vm *vm, const char *name)
{
	for (unsigned d = 0; d < vm->ndisks; d++)
		if (strcmp(rfs_disk_name(vm->disks[d]), name) == 0)
			return vm->disks[d];
	return NULL;
}

/*
 * The disk @dd should be, into @list[*n]: the existing disk of that name if
 * its chain is unchanged, that disk with its new chain, or a new disk.
 * 0 (placed, or left out: *broken says why), or -ENOMEM. Sets @content
 * when an existing disk's bytes change, @shape when a name is new.
 */
static int place_disk(struct rfs_vm *vm, const struct rfs_disk_desc *dd, int dirfd, bool at_point,
		      struct rfs_disk **list, unsigned *n, bool *content, bool *shape, bool *broken)
{
	struct rfs_disk *old = find_disk(vm, dd->name);
	size_t level = 0;
	uint64_t sig;
	void *img;
	int r;

	if (dd->broken || dd->chain_len == 0) {
		add_error(vm, &vm->errs_disks, true, "%s", dd->reason[0] ? dd->reason : dd->name);
		*broken = true;
		return 0;
	}
	r = at_point ? point_level(vm, dirfd, dd, &level) : 0;
	if (r == -ENODATA || level > 0) /* newer than the point: shown after revert */
		__atomic_store_n(&vm->stale, true, __ATOMIC_RELAXED);
	if (r == -ENODATA)
		return 0;
	if (r < 0) {
		add_error(vm, &vm->errs_disks, false, "%s.img: the file of the recovery point it was "
			  "failed over on is gone", dd->name);
		*broken = true;
		return 0;
	}
	if (old && rfs_disk_sig(old) != 0 && level == 0 && rfs_disk_sig(old) == dd->sig) {
		list[(*n)++] = rfs_disk_get(old);
		return 0;
	}
	r = open_chain(vm, dd, level, &img, &sig);
	if (r < 0) {
		*broken = r != -ENOMEM;
		return r == -ENOMEM ? r : 0;
	}
	if (old)
		r = rfs_disk_swap(old, img, dd->chain + level, dd->chain_len - level, sig);
	else
		r = rfs_disk_new(dd->name, vm, vm->be, img, dd->chain + level, dd->chain_len - level, sig,
				 &list[*n]);
	if (r < 0) {
		vm->be->close(img);
		return r;
	}
	if (old)
		list[*n] = rfs_disk_get(old);
	*content |= old != NULL;
	*shape |= old == NULL;
	(*n)++;
	return 0;
}

/* Retire the disks of the VM that are not in @list, and drop the VM's
 * references to its old list. */
static void retire_missing(struct rfs_vm *vm, struct rfs_disk **list, unsigned n, bool *shape)
{
	for (unsigned d = 0; d < vm->ndisks; d++) {
		bool kept = false;

		for (unsigned k = 0; k < n && !kept; k++)
			kept = list[k] == vm->disks[d];
		if (!kept) {
			rfs_disk_retire(vm->disks[d]);
			*shape = true;
		}
		rfs_disk_put(vm->disks[d]);
	}
}

/*
 * Build the disk list from @desc: every disk at its point when @at_point
 * (failed over), else at its newest level (place_disk). The disks left out
 * are retired. Caller holds open_lock with no file open, or is
 * rfs_vm_open(). 0 or -ENOMEM (the old list stays; disks swapped so far
 * keep their new chain).
 */
static int build_disks(struct rfs_vm *vm, const struct rfs_vm_desc *desc, int dirfd, bool at_point,
		       bool *content, bool *shape)
{
	struct rfs_disk **list = calloc(desc->ndisks ? desc->ndisks : 1, sizeof(*list));
	bool broken = desc->broken;
	unsigned n = 0;

	if (!list || set_known(vm, desc) < 0) {
		free(list);
		return -ENOMEM;
	}
	free(vm->errs_disks);
	vm->errs_disks = NULL;
	for (size_t i = 0; i < desc->ndisks; i++) {
		if (place_disk(vm, &desc->disks[i], dirfd, at_point, list, &n, content, shape, &broken) < 0) {
			while (n--)
				rfs_disk_put(list[n]);
			free(list);
			return -ENOMEM;
		}
	}
	retire_missing(vm, list, n, shape);
	free(vm->disks);
	vm->disks = list;
	vm->ndisks = n;
	vm->facts.broken = broken;
	if (broken && !vm->errs_disks) /* the folder itself could not be read */
		add_error(vm, &vm->errs_disks, true, "%s: the VM's folder cannot be read", vm->dir);
	publish_errors(vm);
	return 0;
}

/* --- recovery points (SPEC §2, §9; ctl/points.h) ------------------------------ */

static uint64_t disk_size_of(void *arg, const char *name)
{
	struct rfs_disk *d = find_disk(arg, name);

	return d ? rfs_disk_size(d) : 0;
}

/* Follow @desc's points: a list that names other points or files replaces
 * the old one (whose opened chains live on with their open files). Caller
 * holds cmd_lock and open_lock, or is rfs_vm_open(). Returns true when the
 * list changed (the tree must follow). */
static bool update_points(struct rfs_vm *vm, const struct rfs_vm_desc *desc)
{
	struct rfs_points *p;

	if (rfs_points_build(desc, vm->be, vm->cfg.max_handles, disk_size_of, vm, &p) < 0)
		return false; /* out of memory: the old list stays */
	if (vm->points && rfs_points_same(vm->points, p)) {
		rfs_points_put(p);
		return false;
	}
	rfs_points_put(vm->points);
	vm->points = p;
	return true;
}

struct rfs_points *rfs_vm_points(struct rfs_vm *vm)
{
	struct rfs_points *p = NULL;

	pthread_mutex_lock(&vm->open_lock);
	if (vm->points && vm->owner && !vm->retired && !vm->test_of)
		p = rfs_points_get(vm->points);
	pthread_mutex_unlock(&vm->open_lock);
	return p;
}

static void open_test_at_load(struct rfs_vm *vm);

/*
 * A committed, standalone VM (vm.state format 3) is served from its state
 * folder alone: one disk per tip, named and sized by its overlay's header,
 * reading zeros below the overlay; the replica folder is not looked at (it
 * may be gone). A disk whose overlay header cannot be read is broken
 * (state 8). 0 or -ENOMEM.
 */
static int build_standalone(struct rfs_vm *vm, int dirfd)
{
	struct rfs_disk **list = calloc(vm->on_disk.ntips ? vm->on_disk.ntips : 1, sizeof(*list));
	char **known = calloc(vm->on_disk.ntips ? vm->on_disk.ntips : 1, sizeof(*known));
	unsigned n = 0;

	if (!list || !known)
		goto out_nomem;
	for (size_t i = 0; i < vm->on_disk.ntips; i++) {
		const struct rfs_saved_tip *tip = &vm->on_disk.tips[i];
		struct cow_identity id;
		int r;

		known[i] = strdup(tip->disk);
		if (!known[i])
			goto out_nomem;
		r = cow_peek(dirfd, tip->disk, &id);
		if (r == 0 && strcmp(id.disk, tip->disk) != 0)
			r = -EUCLEAN;
		if (r < 0) {
			rfs_log(LOG_ERR, "%s: committed disk %s: its overlay cannot be read: %s", vm->name,
				tip->disk, r == -EUCLEAN ? "corrupt overlay header" : strerror(-r));
			vm->facts.broken = true;
			continue;
		}
		r = rfs_disk_new_standalone(&id, tip->file, vm, &list[n]);
		if (r < 0)
			goto out_nomem;
		n++;
	}
	free_known(vm->known, vm->nknown);
	vm->known = known;
	vm->nknown = (unsigned)vm->on_disk.ntips;
	free(vm->disks); /* empty: a first load, or after fence() */
	vm->disks = list;
	vm->ndisks = n;
	return 0;

out_nomem:
	while (list && n--)
		rfs_disk_put(list[n]);
	free(list);
	free_known(known, (unsigned)vm->on_disk.ntips);
	return -ENOMEM;
}

/*
 * Bring the VM in line with its state folder at open: load the saved state,
 * open the disks at their point, attach the overlays of a failed-over VM,
 * migrate a format-1 vm.state, remove overlays a crash left in state 3.
 */
static int load(struct rfs_vm *vm, const struct rfs_vm_desc *desc)
{
	bool failed_over, content = false, shape = false;
	int dirfd, r;

	vm->state = RFS_STATE_REPLICATING;
	dirfd = vm_state_dir(vm, false);
	if (dirfd < 0 && dirfd != -ENOENT) {
		rfs_log(LOG_ERR, "%s: cannot open its state folder: %s", vm->name, strerror(-dirfd));
		vm->facts.saved_unknown = true;
	}
	r = dirfd < 0 ? -ENOENT : rfs_saved_load(dirfd, &vm->on_disk);
	if (r < 0 && r != -ENOENT) {
		rfs_log(LOG_ERR, "%s: saved state vm.state cannot be read: %s", vm->name,
			r == -EBADMSG ? "corrupt content" : strerror(-r));
		vm->facts.saved_unknown = true;
		rfs_saved_init(&vm->on_disk);
	}
	if (r == 0) {
		struct stat st;

		vm->state = vm->on_disk.state;
		vm->has_status = vm->on_disk.has_status;
		vm->status = vm->on_disk.status;
		/* state and status last changed when they were stored */
		if (fstatat(dirfd, "vm.state", &st, 0) == 0)
			vm->times[RFS_VM_STATE] = vm->times[RFS_VM_STATUS] = st.st_mtim;
	}
	failed_over = !vm->facts.saved_unknown && vm->state != RFS_STATE_REPLICATING;
	if (failed_over && vm->on_disk.standalone && dirfd >= 0 && !vm->ndisks)
		r = build_standalone(vm, dirfd);
	else
		r = build_disks(vm, desc, dirfd, failed_over, &content, &shape);
	if (r == 0) {
		update_points(vm, desc);
		open_test_at_load(vm);
	}
	if (r < 0 || dirfd < 0)
		goto out;
	vm->has_overlay = any_overlay_file(vm, dirfd);
	if (vm->facts.saved_unknown)
		goto out;
	if (!failed_over) {
		/* Overlays (or half-made ".tmp" ones) left by a command a crash
		 * interrupted: state 3 owns none. */
		if (vm->has_overlay)
			rfs_log(LOG_INFO, "%s: removing overlays left by an interrupted command", vm->name);
		remove_overlays(vm, dirfd); /* also a half-made ".tmp" alone */
		vm->has_overlay = false;
		goto out;
	}
	attach_overlays(vm, dirfd);
	if (vm->on_disk.version < 2 && !vm->facts.mismatch && !vm->facts.broken) {
		int s = store_saved(vm, dirfd, vm->on_disk.state, vm->on_disk.has_status,
				     vm->on_disk.status, true);

		rfs_log(s ? LOG_ERR : LOG_INFO, "%s: vm.state %s format 2 (recovery point recorded)",
			vm->name, s ? "could not be migrated to" : "migrated to");
	}
out:
	if (dirfd >= 0)
		close(dirfd);
	return r;
}

/* Try to take the owner lock (SPEC §8). 0: we own the VM now; -EAGAIN:
 * another daemon does; other -errno: logged (the VM is not served). */
static int claim(struct rfs_vm *vm)
{
	int dirfd = vm_state_dir(vm, true);
	int r = dirfd < 0 ? dirfd : rfs_owner_claim(dirfd, &vm->lock_fd);

	if (dirfd >= 0)
		close(dirfd);
	if (r == 0)
		rfs_owner_publish(vm->lock_fd);
	else if (r != -EAGAIN)
		rfs_log(LOG_ERR, "%s: cannot take its owner lock: %s", vm->name, strerror(-r));
	return r;
}

/* A VM another daemon owns: show its saved state as that daemon stored it
 * (read only; nothing in its state folder is touched). */
static void show_saved(struct rfs_vm *vm)
{
	struct rfs_saved s;
	int dirfd = vm_state_dir(vm, false);
	int r = dirfd < 0 ? dirfd : rfs_saved_load(dirfd, &s);

	if (dirfd >= 0)
		close(dirfd);
	pthread_mutex_lock(&vm->open_lock);
	vm->facts.saved_unknown = r < 0 && r != -ENOENT;
	vm->state = r == 0 ? s.state : RFS_STATE_REPLICATING;
	if (!vm->local_status) {
		bool had = vm->has_status;
		enum rfs_result was = vm->status;

		vm->has_status = r == 0 && s.has_status;
		vm->status = r == 0 ? s.status : RFS_OK;
		if (had != vm->has_status || was != vm->status)
			touch(vm, RFS_VM_STATUS); /* the owner's new result */
	}
	note_state(vm, rfs_state_shown(vm->state, &vm->facts));
	pthread_mutex_unlock(&vm->open_lock);
	if (r == 0 || r == -EBADMSG)
		rfs_saved_free(&s);
}

int rfs_vm_open(const struct rfs_vm_desc *desc, uint64_t fp, const struct rfs_vm_config *cfg,
		struct rfs_vm **out)
{
	struct rfs_vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return -ENOMEM;
	snprintf(vm->name, sizeof(vm->name), "%s", desc->name);
	snprintf(vm->dir, sizeof(vm->dir), "%s", desc->dir);
	vm->cfg = *cfg;
	vm->be = cfg->backend ? cfg->backend : &rfs_vhd_backend;
	vm->refs = 1;
	__atomic_store_n(&vm->fp, fp, __ATOMIC_RELAXED);
	rfs_saved_init(&vm->on_disk);
	pthread_mutex_init(&vm->cmd_lock, NULL);
	pthread_mutex_init(&vm->open_lock, NULL);
	pthread_mutex_init(&vm->shown_lock, NULL);
	pthread_cond_init(&vm->closed, NULL);
	vm->lock_fd = -1;
	clock_gettime(CLOCK_REALTIME, &vm->times[0]);
	for (int i = 1; i < RFS_VM_NTEXTS; i++)
		vm->times[i] = vm->times[0];
	if (claim(vm) == 0) {
		if (load(vm, desc) < 0) {
			rfs_vm_put(vm);
			return -ENOMEM;
		}
		vm->owner = true;
	} else {
		show_saved(vm);
	}
	vm->noted_state = rfs_state_shown(vm->state, &vm->facts); /* at open: no change yet */
	*out = vm;
	return 0;
}

struct rfs_vm *rfs_vm_get(struct rfs_vm *vm)
{
	__atomic_add_fetch(&vm->refs, 1, __ATOMIC_RELAXED);
	return vm;
}

void rfs_vm_put(struct rfs_vm *vm)
{
	if (!vm || __atomic_sub_fetch(&vm->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	rfs_vm_stop_job(vm);
	rfs_job_free(vm->job);
	detach_overlays(vm);
	for (unsigned d = 0; d < vm->ndisks; d++)
		rfs_disk_put(vm->disks[d]);
	free(vm->disks);
	free_known(vm->known, vm->nknown);
	free(vm->errs_disks);
	free(vm->errs_overlays);
	free(vm->errors);
	pthread_mutex_destroy(&vm->shown_lock);
	rfs_points_put(vm->points);
	if (vm->test) {
		__atomic_store_n(&vm->test->test_of, NULL, __ATOMIC_RELAXED);
		rfs_vm_put(vm->test);
	}
	rfs_saved_free(&vm->on_disk);
	if (vm->lock_fd >= 0)
		close(vm->lock_fd); /* another daemon may take the VM over now */
	pthread_cond_destroy(&vm->closed);
	pthread_mutex_destroy(&vm->open_lock);
	pthread_mutex_destroy(&vm->cmd_lock);
	free(vm);
}

const char *rfs_vm_name(const struct rfs_vm *vm)
{
	return vm->name;
}

/* --- what is shown ----------------------------------------------------------- */

enum rfs_state rfs_vm_state(struct rfs_vm *vm)
{
	enum rfs_state s;

	if (!rfs_vm_owned(vm))
		show_saved(vm); /* what the owner stored, now */
	pthread_mutex_lock(&vm->open_lock);
	s = rfs_state_shown(vm->state, &vm->facts);
	note_state(vm, s); /* a change of the facts is seen here */
	pthread_mutex_unlock(&vm->open_lock);
	return s;
}

bool rfs_vm_writable(struct rfs_vm *vm)
{
	bool w;

	pthread_mutex_lock(&vm->open_lock);
	w = rfs_disks_writable(vm->state, &vm->facts);
	pthread_mutex_unlock(&vm->open_lock);
	return w;
}

int rfs_vm_status(struct rfs_vm *vm, char *buf, int size)
{
	int len = 0;

	if (!rfs_vm_owned(vm))
		show_saved(vm);
	pthread_mutex_lock(&vm->open_lock);
	if (vm->has_status)
		len = rfs_result_format(vm->status, buf, size);
	pthread_mutex_unlock(&vm->open_lock);
	return len;
}

/* Show @code as the status, in memory only; returns the stored state. */
static enum rfs_state show_status(struct rfs_vm *vm, enum rfs_result code)
{
	enum rfs_state s;

	pthread_mutex_lock(&vm->open_lock);
	vm->has_status = true;
	vm->status = code;
	vm->status_gen++;
	vm->local_status = !vm->owner;
	s = vm->state;
	pthread_mutex_unlock(&vm->open_lock);
	touch(vm, RFS_VM_STATUS); /* a new result, even when it reads the same */
	return s;
}

/*
 * Show @code as the status and store it with the state. Caller holds
 * cmd_lock. A failure to store is logged: the status stays in memory (the
 * command's outcome is already decided). The file is left alone when it is
 * unreadable, so that what is in it can still be inspected.
 */
static void record_status(struct rfs_vm *vm, enum rfs_result code)
{
	enum rfs_state state = show_status(vm, code);
	int dirfd, r;

	if (vm->facts.saved_unknown || vm->retired || !__atomic_load_n(&vm->owner, __ATOMIC_RELAXED))
		return; /* only the owner writes the state folder */
	if (vm->on_disk.has_status && vm->on_disk.status == (int)code && vm->on_disk.state == state)
		return; /* the command stored exactly this already */
	dirfd = vm_state_dir(vm, true);
	r = dirfd;
	if (dirfd >= 0) {
		struct rfs_saved s;

		rfs_saved_init(&s);
		r = rfs_saved_copy(&s, &vm->on_disk);
		if (r == 0) {
			s.state = state;
			s.has_status = true;
			s.status = code;
			r = rfs_saved_store(dirfd, &s);
			if (r == 0) {
				rfs_saved_free(&vm->on_disk);
				vm->on_disk = s;
			} else {
				rfs_saved_free(&s);
			}
		}
		close(dirfd);
	}
	if (r < 0)
		rfs_log(LOG_WARNING, "%s: status %d not saved: %s", vm->name, code, strerror(-r));
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
		show_status(vm, code);
		return;
	}
	record_status(vm, code);
	pthread_mutex_unlock(&vm->cmd_lock);
}

/* --- commands ----------------------------------------------------------------- */

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

static void publish_state(struct rfs_vm *vm, enum rfs_state state, bool has_overlay)
{
	pthread_mutex_lock(&vm->open_lock);
	vm->state = state;
	vm->has_overlay = has_overlay;
	note_state(vm, rfs_state_shown(vm->state, &vm->facts));
	pthread_mutex_unlock(&vm->open_lock);
}

/* Are the replica files of every disk still where they were found? An
 * overlay must not be started over a replica that is gone (32779). */
static int check_replica_files(struct rfs_vm *vm)
{
	char which[PATH_MAX];

	for (unsigned d = 0; d < vm->ndisks; d++) {
		int r = rfs_disk_check_files(vm->disks[d], which, sizeof(which));

		if (r < 0) {
			rfs_log(LOG_ERR, "%s: %s: %s", vm->name, which, strerror(-r));
			return r;
		}
	}
	return 0;
}

/* failover: new empty overlays, then state @next with the point (see vm.h
 * for the ordering). The disk list cannot change meanwhile: refreshes take
 * cmd_lock too. */
static struct rfs_outcome do_failover(struct rfs_vm *vm, enum rfs_state next)
{
	struct cow_overlay **ovs;
	unsigned made = 0;
	int dirfd, r;

	if (vm->ndisks == 0)
		return outcome_of(RFS_FILE_NOT_FOUND); /* its disk files are gone */
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

		rfs_disk_identity(vm->disks[made], &id);
		r = cow_create(dirfd, id.disk, &id, &ovs[made]);
		if (r < 0) {
			rfs_log(LOG_ERR, "%s/%s: cannot create overlay: %s", vm->name, id.disk, strerror(-r));
			goto out_undo;
		}
	}
	r = store_saved(vm, dirfd, next, true, RFS_OK, true);
	if (r < 0) {
		rfs_log(LOG_ERR, "%s: cannot store state: %s", vm->name, strerror(-r));
		goto out_undo;
	}
	for (unsigned d = 0; d < vm->ndisks; d++)
		rfs_disk_set_overlay(vm->disks[d], ovs[d]);
	publish_state(vm, next, true);
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

/* Say which file keeps the VM in use (for the log line of the refused
 * command), as the tree shows it. Caller holds cmd_lock and open_lock. */
static void note_open_disk(struct rfs_vm *vm)
{
	unsigned found = 0;

	snprintf(vm->busy, sizeof(vm->busy), "a disk of %s is open", vm->name); /* one that left */
	for (unsigned d = 0; d < vm->ndisks; d++) {
		if (rfs_disk_nopen(vm->disks[d]) == 0)
			continue;
		if (found++ == 0)
			snprintf(vm->busy, sizeof(vm->busy), "vms/%s/%s.img is open", vm->name,
				 rfs_disk_name(vm->disks[d]));
	}
	if (found > 1) {
		size_t len = strlen(vm->busy);

		snprintf(vm->busy + len, sizeof(vm->busy) - len, " (and %u more)", found - 1);
	}
}

/* After a revert: the disks go to the newest point when the folder changed
 * since they were opened. Caller holds cmd_lock and open_lock, no file is
 * open and no overlay attached. */
static void follow_folder(struct rfs_vm *vm)
{
	bool content = false, shape = false;
	struct rfs_vm_desc desc;
	uint64_t fp;

	if (!vm->cfg.hooks.describe)
		return;
	if (!__atomic_load_n(&vm->stale, __ATOMIC_RELAXED) && rfs_discover_fingerprint(vm->dir, &fp) == 0 &&
	    fp == __atomic_load_n(&vm->fp, __ATOMIC_RELAXED))
		return;
	if (vm->cfg.hooks.describe(vm->cfg.hooks.arg, vm->name, &desc, &fp) < 0)
		return; /* the next rescan tries again */
	if (build_disks(vm, &desc, -1, false, &content, &shape) == 0) {
		__atomic_store_n(&vm->fp, fp, __ATOMIC_RELAXED);
		__atomic_store_n(&vm->stale, false, __ATOMIC_RELAXED);
		vm->reshape |= shape;
		vm->reshape |= update_points(vm, &desc);
	}
	rfs_vm_desc_free(&desc);
}

/* revert: state @next first, then the overlays go (see vm.h for the
 * ordering). Holds open_lock throughout so that no file is opened in
 * between. */
static struct rfs_outcome do_revert(struct rfs_vm *vm, enum rfs_state next)
{
	struct rfs_outcome o = outcome_of(RFS_OK);
	int dirfd, r;

	dirfd = vm_state_dir(vm, true);
	if (dirfd < 0)
		return outcome_of_errno(dirfd);
	pthread_mutex_lock(&vm->open_lock);
	if (!wait_unused(vm)) {
		note_open_disk(vm);
		o = outcome_of(RFS_IN_USE);
		goto out_unlock;
	}
	r = store_saved(vm, dirfd, next, true, RFS_OK, false);
	if (r < 0) {
		rfs_log(LOG_ERR, "%s: cannot store state: %s", vm->name, strerror(-r));
		o = outcome_of_errno(r);
		goto out_unlock;
	}
	/* Names first, durably; then the descriptors, whose close is left to
	 * the background closer (its cost grows with the overlay). A failure
	 * to remove leaves strays, removed at the next mount. */
	remove_overlays(vm, dirfd);
	detach_overlays(vm);
	vm->state = next;
	vm->facts.mismatch = false;
	vm->has_overlay = false;
	free(vm->errs_overlays);
	vm->errs_overlays = NULL;
	publish_errors(vm);
	note_state(vm, rfs_state_shown(vm->state, &vm->facts));
	follow_folder(vm);
	notify_changed(vm, true);
out_unlock:
	pthread_mutex_unlock(&vm->open_lock);
	close(dirfd);
	return o;
}

/* --- the commit job (SPEC §10; the copy is ctl/commit.c) ----------------------- */

struct commit_ctx {
	struct rfs_vm *vm;           /* outlives the job: rfs_vm_put() ends it first */
	struct rfs_commit *commit;
	unsigned gen;                /* status_gen of the job's own 4096 */
};

static int commit_run(struct rfs_job *job, void *arg)
{
	struct commit_ctx *ctx = arg;

	return rfs_commit_run(ctx->commit, job);
}

/* Store state 6, standalone, with the tips and @status; then the disks
 * stop reading the replica. Caller holds cmd_lock. */
static int store_committed(struct rfs_vm *vm, bool has_status, enum rfs_result status)
{
	struct rfs_saved s;
	int dirfd, r;

	if (!__atomic_load_n(&vm->owner, __ATOMIC_RELAXED))
		return -ESTALE; /* fenced meanwhile: the state folder is another's */
	dirfd = vm_state_dir(vm, true);
	if (dirfd < 0)
		return dirfd;
	rfs_saved_init(&s);
	r = rfs_saved_copy(&s, &vm->on_disk);
	for (unsigned d = 0; r == 0 && d < vm->ndisks; d++) {
		struct cow_identity id;
		size_t n;
		char *const *chain = rfs_disk_chain(vm->disks[d], &n);

		rfs_disk_identity(vm->disks[d], &id);
		r = rfs_saved_set_tip(&s, rfs_disk_name(vm->disks[d]), base_name(chain[0]), id.identifier);
	}
	if (r == 0) {
		s.state = RFS_STATE_COMMITTED;
		s.standalone = true;
		s.has_status = has_status;
		s.status = has_status ? status : RFS_OK;
		r = rfs_saved_store(dirfd, &s);
	}
	close(dirfd);
	if (r < 0) {
		rfs_saved_free(&s);
		return r;
	}
	rfs_saved_free(&vm->on_disk);
	vm->on_disk = s;
	for (unsigned d = 0; d < vm->ndisks; d++)
		if (rfs_disk_make_standalone(vm->disks[d]) < 0)
			rfs_log(LOG_WARNING, "%s/%s: replica kept open until the next mount (out of memory)",
				vm->name, rfs_disk_name(vm->disks[d]));
	publish_state(vm, RFS_STATE_COMMITTED, true);
	notify_changed(vm, false);
	return 0;
}

/* The job's end, on its thread: state 6 after a complete copy, else 5 as
 * before; the status becomes the job's result unless a command replaced
 * the job's 4096 meanwhile (SPEC §10). A cancelled job: cancel did it. */
static int commit_finish(struct rfs_job *job, void *arg, int result)
{
	struct commit_ctx *ctx = arg;
	struct rfs_vm *vm = ctx->vm;
	struct rfs_outcome o;
	bool ours;

	if (!rfs_job_settle(job))
		return -ECANCELED;
	pthread_mutex_lock(&vm->cmd_lock);
	pthread_mutex_lock(&vm->open_lock);
	ours = vm->status_gen == ctx->gen;
	pthread_mutex_unlock(&vm->open_lock);
	if (result == 0)
		result = store_committed(vm, true, ours ? RFS_OK : vm->status);
	pthread_mutex_lock(&vm->open_lock);
	vm->facts.job_running = false;
	pthread_mutex_unlock(&vm->open_lock);
	o = result ? outcome_of_errno(result) : outcome_of(RFS_OK);
	if (ours)
		record_status(vm, o.code);
	pthread_mutex_unlock(&vm->cmd_lock);
	if (result)
		rfs_log(LOG_ERR, "%s: commit failed: %d %s (%s); still in state 5", vm->name, o.code,
			rfs_result_name(o.code), strerror(-result));
	else
		rfs_log(LOG_INFO, "%s: committed: the VM no longer reads its replica", vm->name);
	return result;
}

static void commit_release(void *arg)
{
	struct commit_ctx *ctx = arg;

	rfs_commit_free(ctx->commit);
	free(ctx);
}

static const struct rfs_job_ops commit_ops = {
	.run = commit_run,
	.finish = commit_finish,
	.release = commit_release,
};

/* commit: start the job; state 12 (shown) until it ends. */
static struct rfs_outcome do_commit(struct rfs_vm *vm, enum rfs_state next)
{
	struct commit_ctx *ctx = calloc(1, sizeof(*ctx));
	struct rfs_job *job, *old;
	int r;

	if (!ctx)
		return outcome_of(RFS_OUT_OF_MEMORY);
	r = rfs_commit_new(vm->disks, vm->ndisks, &ctx->commit);
	if (r < 0) {
		free(ctx);
		return outcome_of_errno(r);
	}
	ctx->vm = vm;
	pthread_mutex_lock(&vm->open_lock);
	ctx->gen = vm->status_gen + 1; /* the 4096 rfs_vm_command() records next */
	pthread_mutex_unlock(&vm->open_lock);
	r = rfs_job_start(RFS_JOB_COMMIT_FAILOVER, rfs_commit_total(ctx->commit), &commit_ops, ctx, &job);
	if (r < 0) {
		commit_release(ctx);
		return outcome_of_errno(r);
	}
	pthread_mutex_lock(&vm->open_lock);
	old = vm->job;
	vm->job = job;
	vm->facts.job_running = true;
	pthread_mutex_unlock(&vm->open_lock);
	rfs_job_free(old); /* ended: its end took cmd_lock, or cancel waited for it */
	return outcome_of(RFS_JOB_STARTED);
}

/* cancel: stop the job; the VM stays in its stored state (5). */
static struct rfs_outcome do_cancel(struct rfs_vm *vm)
{
	struct rfs_job *job;

	pthread_mutex_lock(&vm->open_lock);
	job = vm->job;
	pthread_mutex_unlock(&vm->open_lock);
	if (!job || !rfs_job_cancel(job))
		return outcome_of(RFS_INVALID_STATE); /* it is ending on its own */
	pthread_mutex_lock(&vm->open_lock);
	vm->facts.job_running = false;
	pthread_mutex_unlock(&vm->open_lock);
	return outcome_of(RFS_OK);
}

/* Put disk @d on the chain of point @at of @p, unless it is there already.
 * Caller holds open_lock; waits for open files to close (-EBUSY). */
static int move_to_point(struct rfs_vm *vm, struct rfs_disk *d, struct rfs_points *p, size_t at)
{
	struct rfs_pdisk *pd = NULL;
	char *const *want, *const *have;
	size_t nwant, nhave;
	char err[512];
	uint64_t sig;
	void *img;
	int r;

	for (size_t k = 0; k < rfs_points_ndisks(p) && !pd; k++)
		if (strcmp(rfs_pdisk_name(rfs_points_disk(p, at, k)), rfs_disk_name(d)) == 0)
			pd = rfs_points_disk(p, at, k);
	if (!pd)
		return -ENOENT; /* the folder no longer has this disk */
	want = rfs_pdisk_chain(pd, &nwant);
	have = rfs_disk_chain(d, &nhave);
	if (nwant == nhave) {
		size_t k = 0;

		while (k < nwant && strcmp(want[k], have[k]) == 0)
			k++;
		if (k == nwant)
			return 0;
	}
	if (!wait_unused(vm))
		return -EBUSY;
	r = vm->be->open((const char *const *)want, nwant, vm->cfg.max_handles, &img, err, sizeof(err));
	if (r < 0) {
		rfs_log(LOG_ERR, "%s: disk %s cannot be opened at the point: %s", vm->name,
			rfs_disk_name(d), err);
		return r;
	}
	if (rfs_discover_chain_sig(want, nwant, &sig) < 0)
		sig = 0;
	r = rfs_disk_swap(d, img, want, nwant, sig);
	if (r < 0) {
		vm->be->close(img);
		return r;
	}
	__atomic_store_n(&vm->stale, true, __ATOMIC_RELAXED); /* revert goes to the newest */
	if (vm->cfg.hooks.changed)
		vm->cfg.hooks.changed(vm->cfg.hooks.arg, vm, d, true);
	return 0;
}

/*
 * failover POINT: the disks move to the chains cut at @point's level (no
 * file may be open then: 32774 after the usual wait), then do_failover()
 * records that point (the tips) with the overlays. Unknown point: 32773; a
 * file of the point gone: 32779. On failure the disks go back to the
 * newest point. Caller holds cmd_lock; @next as rfs_transition() said.
 */
static struct rfs_outcome do_failover_at(struct rfs_vm *vm, enum rfs_state next, const char *name)
{
	struct rfs_outcome o = outcome_of(RFS_OK);
	struct rfs_points *p = rfs_vm_points(vm);
	size_t at;
	int r = 0;

	if (!p || rfs_points_find(p, name, &at) < 0) {
		rfs_points_put(p);
		return outcome_of(RFS_FILE_NOT_FOUND); /* it left since run_point_command() */
	}
	pthread_mutex_lock(&vm->open_lock);
	for (unsigned d = 0; d < vm->ndisks && r == 0; d++)
		r = move_to_point(vm, vm->disks[d], p, at);
	pthread_mutex_unlock(&vm->open_lock);
	rfs_points_put(p);
	if (r == 0)
		o = do_failover(vm, next);
	else
		o = r == -EBUSY ? outcome_of(RFS_IN_USE) : outcome_of_errno(r);
	if (o.code != RFS_OK) {
		pthread_mutex_lock(&vm->open_lock);
		__atomic_store_n(&vm->stale, true, __ATOMIC_RELAXED);
		if (vm->nopen == 0)
			follow_folder(vm); /* back to the newest point */
		pthread_mutex_unlock(&vm->open_lock);
	}
	return o;
}

/* --- the test VM (SPEC §9) -----------------------------------------------------
 * "<vm> - Test" is a VM of its own (struct rfs_vm, test_of set) over the
 * same replica files, with its own state folder STATE/<vm> - Test/ holding
 * its vm.state (state 5, the point as tips) and overlays: rfs_vm_open()
 * loads it like any failed-over VM, at creation and at every mount (from
 * load() of its VM). Its VM holds it (vm->test); the front end lists it
 * through rfs_vm_test(). Crash ordering: create: the folder, every overlay
 * (durable), then vm.state; remove: vm.state first, then the rest. A
 * folder without vm.state is a leftover, removed at the next load.
 * Lock order: the VM's cmd_lock -> the test VM's cmd_lock -> its open_lock.
 */
#define TEST_SUFFIX " - Test"

static int test_name(const struct rfs_vm *vm, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s" TEST_SUFFIX, vm->name);

	return n < 0 || (size_t)n >= size || (size_t)n > NAME_MAX ? -ENAMETOOLONG : 0;
}

/* Remove every file of STATE/@name (ours only: vm.state, overlays, owner)
 * and the folder. vm.state goes first and durably. */
static void remove_state_folder(int root_fd, const char *name)
{
	int dirfd = openat(root_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *e;
	DIR *dir;

	if (dirfd < 0)
		return;
	if (unlinkat(dirfd, "vm.state", 0) == 0)
		rfs_sync_dir(dirfd);
	dir = fdopendir(dirfd);
	if (!dir) {
		close(dirfd);
		return;
	}
	while ((e = readdir(dir)))
		if (e->d_name[0] != '.')
			unlinkat(dirfd, e->d_name, 0);
	closedir(dir);
	if (unlinkat(root_fd, name, AT_REMOVEDIR) < 0)
		rfs_log(LOG_WARNING, "%s: its state folder stays: %s", name, strerror(errno));
}

/* A description of @vm's folder as its newest point has it (every servable
 * disk, whole chains), named @name. 0 or -ENOMEM. */
static int desc_of_points(struct rfs_vm *vm, const char *name, struct rfs_vm_desc *out)
{
	size_t n = rfs_points_ndisks(vm->points);

	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", name);
	snprintf(out->dir, sizeof(out->dir), "%s", vm->dir);
	out->disks = calloc(n ? n : 1, sizeof(*out->disks));
	if (!out->disks)
		return -ENOMEM;
	for (size_t d = 0; d < n; d++) {
		struct rfs_pdisk *pd = rfs_points_disk(vm->points, 0, d);
		struct rfs_disk_desc *dd = &out->disks[d];
		size_t len;
		char *const *chain = rfs_pdisk_chain(pd, &len);

		out->ndisks = d + 1;
		snprintf(dd->name, sizeof(dd->name), "%s", rfs_pdisk_name(pd));
		dd->chain = calloc(len ? len : 1, sizeof(*dd->chain));
		for (size_t k = 0; dd->chain && k < len; k++) {
			dd->chain[k] = strdup(chain[k]);
			if (!dd->chain[k])
				break;
			dd->chain_len = k + 1;
		}
		if (dd->chain_len != len) {
			rfs_vm_desc_free(out);
			return -ENOMEM;
		}
		rfs_discover_chain_sig(dd->chain, dd->chain_len, &dd->sig);
	}
	return 0;
}

/* Open the test VM whose state folder is there. Caller holds cmd_lock (or
 * is rfs_vm_open()). 0 or -errno. */
static int open_test(struct rfs_vm *vm, const char *name)
{
	struct rfs_vm_desc desc;
	struct rfs_vm *t;
	int r = desc_of_points(vm, name, &desc);

	if (r < 0)
		return r;
	r = rfs_vm_open(&desc, 0, &vm->cfg, &t);
	rfs_vm_desc_free(&desc);
	if (r < 0)
		return r;
	t->test_of = vm;
	pthread_mutex_lock(&vm->open_lock);
	vm->test = t;
	pthread_mutex_unlock(&vm->open_lock);
	return 0;
}

/* At load: the test VM a mount left, or the leftover of an interrupted
 * test or stop-test. */
static void open_test_at_load(struct rfs_vm *vm)
{
	char name[NAME_MAX + 16];
	int dirfd;
	bool saved;

	if (vm->test_of || vm->test || test_name(vm, name, sizeof(name)) < 0)
		return;
	dirfd = openat(vm->cfg.state_root_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return;
	saved = faccessat(dirfd, "vm.state", F_OK, 0) == 0;
	close(dirfd);
	if (!saved) {
		rfs_log(LOG_INFO, "%s: removing the leftover of an interrupted test", name);
		remove_state_folder(vm->cfg.state_root_fd, name);
	} else if (open_test(vm, name) < 0) {
		rfs_log(LOG_ERR, "%s: cannot be opened", name);
	}
}

struct rfs_vm *rfs_vm_test(struct rfs_vm *vm)
{
	struct rfs_vm *t;

	pthread_mutex_lock(&vm->open_lock);
	t = vm->test && !vm->retired && vm->owner ? rfs_vm_get(vm->test) : NULL;
	pthread_mutex_unlock(&vm->open_lock);
	return t;
}

/* The state folder of a new test VM over point @at of @p: every overlay,
 * then vm.state (state 5, the point). 0 or -errno (the folder removed). */
static int make_test_folder(struct rfs_vm *vm, const char *name, struct rfs_points *p, size_t at)
{
	struct rfs_saved s;
	int dirfd, r = 0;

	remove_state_folder(vm->cfg.state_root_fd, name);
	if (mkdirat(vm->cfg.state_root_fd, name, 0700) < 0)
		return -errno;
	dirfd = openat(vm->cfg.state_root_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		r = -errno;
		goto out_remove;
	}
	rfs_saved_init(&s);
	s.state = RFS_STATE_RECOVERED;
	s.has_status = true;
	s.status = RFS_OK;
	for (size_t d = 0; d < rfs_points_ndisks(p) && r == 0; d++) {
		struct rfs_pdisk *pd = rfs_points_disk(p, at, d);
		struct cow_overlay *ov;
		struct cow_identity id;
		struct rfs_disk *disk;
		size_t n;

		r = rfs_pdisk_open(pd, &disk); /* shared with points/ */
		if (r < 0)
			break;
		rfs_disk_identity(disk, &id);
		rfs_disk_put(disk);
		r = cow_create(dirfd, id.disk, &id, &ov);
		if (r == 0) {
			cow_close(ov);
			r = rfs_saved_set_tip(&s, id.disk, base_name(rfs_pdisk_chain(pd, &n)[0]), id.identifier);
		}
	}
	if (r == 0)
		r = rfs_saved_store(dirfd, &s);
	rfs_saved_free(&s);
	close(dirfd);
out_remove:
	if (r < 0)
		remove_state_folder(vm->cfg.state_root_fd, name);
	return r;
}

/* test [POINT]: from 3 or 5; one test VM per VM. Caller holds cmd_lock. */
static struct rfs_outcome do_test(struct rfs_vm *vm, enum rfs_state cur, const char *point)
{
	char name[NAME_MAX + 16];
	struct rfs_points *p;
	size_t at;
	int r;

	if (cur == RFS_STATE_CRITICAL)
		return outcome_of(RFS_NOT_AVAILABLE);
	if (cur == RFS_STATE_FAILOVER_IN_PROGRESS)
		return outcome_of(RFS_IN_USE); /* a job runs */
	if ((cur != RFS_STATE_REPLICATING && cur != RFS_STATE_RECOVERED) || vm->test)
		return outcome_of(RFS_INVALID_STATE);
	if (test_name(vm, name, sizeof(name)) < 0)
		return outcome_of(RFS_INVALID_PARAMETER);
	p = rfs_vm_points(vm);
	if (!p || rfs_points_find(p, point, &at) < 0) {
		rfs_points_put(p);
		rfs_log(LOG_ERR, "%s: no recovery point named \"%s\"", vm->name, point);
		return outcome_of(RFS_INVALID_PARAMETER);
	}
	rfs_log(LOG_INFO, "%s: test failover to %s as \"%s\"", vm->name, rfs_points_name_at(p, at), name);
	cow_wait_freed();
	r = make_test_folder(vm, name, p, at);
	rfs_points_put(p);
	if (r == 0)
		r = open_test(vm, name);
	if (r < 0) {
		rfs_log(LOG_ERR, "%s: cannot be made: %s", name, strerror(-r));
		remove_state_folder(vm->cfg.state_root_fd, name);
		return outcome_of_errno(r);
	}
	vm->reshape = true;
	return outcome_of(RFS_OK);
}

/*
 * The test VM stops being served: its disks retired (I/O fails from now
 * on), its overlays closed, its owner lock given back, and the VM lets go
 * of it. @remove (stop-test): only once its files are closed (false when
 * they stay open), and its state folder goes too; otherwise (fence) at
 * once, the folder kept. Caller holds the VM's cmd_lock.
 */
static bool end_test(struct rfs_vm *vm, bool remove)
{
	struct rfs_vm *t = vm->test;
	char name[NAME_MAX + 16];

	pthread_mutex_lock(&t->cmd_lock);
	pthread_mutex_lock(&t->open_lock);
	if (remove && !wait_unused(t)) {
		pthread_mutex_unlock(&t->open_lock);
		pthread_mutex_unlock(&t->cmd_lock);
		return false;
	}
	t->retired = true;
	detach_overlays(t);
	for (unsigned d = 0; d < t->ndisks; d++)
		rfs_disk_retire(t->disks[d]);
	__atomic_store_n(&t->owner, false, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&t->open_lock);
	snprintf(name, sizeof(name), "%s", t->name);
	if (remove)
		remove_state_folder(vm->cfg.state_root_fd, name);
	if (t->lock_fd >= 0)
		close(t->lock_fd);
	t->lock_fd = -1;
	pthread_mutex_unlock(&t->cmd_lock);
	pthread_mutex_lock(&vm->open_lock);
	vm->test = NULL;
	pthread_mutex_unlock(&vm->open_lock);
	rfs_vm_put(t);
	rfs_log(LOG_INFO, "%s: %s", name, remove ? "removed" : "no longer served here");
	return true;
}

/* stop-test: the test VM leaves (its files must be closed: 32774), then
 * its state folder goes. Caller holds cmd_lock. */
static struct rfs_outcome do_stop_test(struct rfs_vm *vm)
{
	if (!vm->test)
		return outcome_of(RFS_INVALID_STATE);
	if (!end_test(vm, true))
		return outcome_of(RFS_IN_USE);
	vm->reshape = true;
	return outcome_of(RFS_OK);
}

/* Does the VM have a recovery point @name (or "latest")? Logs when not. */
static bool point_known(struct rfs_vm *vm, const char *name)
{
	struct rfs_points *p = rfs_vm_points(vm);
	size_t at;
	bool known = p && rfs_points_find(p, name, &at) == 0;

	rfs_points_put(p);
	if (!known)
		rfs_log(LOG_ERR, "%s: no recovery point named \"%s\"", vm->name, name);
	return known;
}

/* A command of SPEC §9 (rfs_parse_point_command), after the checks every
 * command passes. Caller holds cmd_lock. */
static struct rfs_outcome run_point_command(struct rfs_vm *vm, enum rfs_point_verb pverb, const char *point)
{
	enum rfs_state cur, next;
	enum rfs_result code;
	bool has_overlay, retired;

	if (vm->facts.saved_unknown)
		return outcome_of(RFS_STATUS_UNKNOWN);
	pthread_mutex_lock(&vm->open_lock);
	cur = rfs_state_shown(vm->state, &vm->facts);
	has_overlay = vm->has_overlay;
	retired = vm->retired;
	pthread_mutex_unlock(&vm->open_lock);
	if (retired)
		return outcome_of(RFS_FILE_NOT_FOUND);
	if (!__atomic_load_n(&vm->owner, __ATOMIC_RELAXED))
		return outcome_of(RFS_IN_USE);
	if (vm->test_of)
		return outcome_of(RFS_INVALID_STATE); /* a test VM has no test VM */
	if (*point && !point_known(vm, point))
		return outcome_of(RFS_INVALID_PARAMETER); /* parameters are checked first */
	if (pverb == RFS_PVERB_TEST)
		return do_test(vm, cur, *point ? point : "latest");
	if (pverb == RFS_PVERB_STOP_TEST)
		return do_stop_test(vm);
	code = rfs_transition(cur, has_overlay, RFS_VERB_FAILOVER, &next);
	if (code != RFS_OK)
		return outcome_of(code);
	rfs_log(LOG_INFO, "%s: failover to %s (state %d -> %d)", vm->name, point, cur, next);
	return do_failover_at(vm, next, point);
}

static struct rfs_outcome run_command(struct rfs_vm *vm, const char *buf, size_t len, bool authorised)
{
	enum rfs_state cur, next;
	enum rfs_result code;
	enum rfs_verb verb;
	enum rfs_point_verb pverb;
	char point[RFS_CMD_MAX + 1];
	bool has_overlay, retired;

	if (!authorised)
		return outcome_of(RFS_ACCESS_DENIED);
	code = rfs_parse_point_command(buf, len, &pverb, point, sizeof(point));
	if (code != RFS_OK || pverb != RFS_PVERB_NONE)
		return code != RFS_OK ? outcome_of(code) : run_point_command(vm, pverb, point);
	code = rfs_parse_command(buf, len, &verb);
	if (code != RFS_OK)
		return outcome_of(code);
	if (vm->test_of)
		return outcome_of(RFS_INVALID_STATE); /* a test VM: only revert (rfs_vm_command) */
	if (vm->facts.saved_unknown)
		return outcome_of(RFS_STATUS_UNKNOWN);

	pthread_mutex_lock(&vm->open_lock);
	cur = rfs_state_shown(vm->state, &vm->facts);
	/* a committed VM's overlays are its only copy: no revert from 8 */
	has_overlay = vm->has_overlay && !vm->on_disk.standalone;
	retired = vm->retired;
	pthread_mutex_unlock(&vm->open_lock);
	if (retired)
		return outcome_of(RFS_FILE_NOT_FOUND); /* its folder is gone */
	if (!__atomic_load_n(&vm->owner, __ATOMIC_RELAXED))
		return outcome_of(RFS_IN_USE); /* another daemon owns it (SPEC §8) */
	code = rfs_transition(cur, has_overlay, verb, &next);
	if (code != RFS_OK)
		return outcome_of(code);

	switch (verb) {
	case RFS_VERB_FAILOVER:
		return do_failover(vm, next);
	case RFS_VERB_REVERT:
		return do_revert(vm, next);
	case RFS_VERB_COMMIT:
		return do_commit(vm, next);
	case RFS_VERB_CANCEL:
		return do_cancel(vm);
	}
	return outcome_of(RFS_NOT_SUPPORTED);
}

/* Tell the front end the disk list changed; caller holds no lock. */
static void reshaped(struct rfs_vm *vm, bool shape)
{
	if (shape && vm->cfg.hooks.reshaped)
		vm->cfg.hooks.reshaped(vm->cfg.hooks.arg, vm);
}

/* The state as shown, without looking at another daemon's saved state. */
static enum rfs_state state_now(struct rfs_vm *vm)
{
	enum rfs_state s;

	pthread_mutex_lock(&vm->open_lock);
	s = rfs_state_shown(vm->state, &vm->facts);
	pthread_mutex_unlock(&vm->open_lock);
	return s;
}

/* One log line per command, after it ran (SPEC §12): the command, its
 * result code and the state before and after; a refusal is a warning, and
 * a 32774 says which file is open. Caller holds cmd_lock. */
static void log_command(struct rfs_vm *vm, const char *buf, size_t len, enum rfs_state before,
			struct rfs_outcome o)
{
	enum rfs_state after = state_now(vm);
	char what[48], why[sizeof(vm->busy) + 2] = "";
	enum rfs_verb verb;
	size_t n;

	if (rfs_parse_command(buf, len, &verb) == RFS_OK) {
		snprintf(what, sizeof(what), "%s", rfs_verb_name(verb));
	} else { /* as written, printable and short */
		for (n = 0; n < len && n + 3 < sizeof(what) && buf[n] != '\n'; n++)
			what[n + 1] = (buf[n] >= 0x20 && buf[n] < 0x7f) ? buf[n] : '?';
		what[0] = '"';
		what[n + 1] = '"';
		what[n + 2] = '\0';
	}
	if (o.code == RFS_IN_USE && vm->busy[0])
		snprintf(why, sizeof(why), ": %s", vm->busy);
	rfs_log(o.code == RFS_OK || o.code == RFS_JOB_STARTED ? LOG_INFO : LOG_WARNING,
		"%s: %s: %d %s (state %d -> %d)%s", vm->name, what, o.code, rfs_result_name(o.code),
		before, after, why);
}

/* revert written to a test VM: its VM's stop-test (SPEC §9). */
static bool is_test_revert(const char *buf, size_t len, bool authorised)
{
	enum rfs_verb verb;

	return authorised && rfs_parse_command(buf, len, &verb) == RFS_OK && verb == RFS_VERB_REVERT;
}

struct rfs_outcome rfs_vm_command(struct rfs_vm *vm, const char *buf, size_t len, bool authorised)
{
	struct rfs_vm *of = __atomic_load_n(&vm->test_of, __ATOMIC_RELAXED);
	struct rfs_outcome o;
	enum rfs_state before;
	bool shape;

	if (of && is_test_revert(buf, len, authorised))
		return rfs_vm_command(of, "stop-test", 9, true);
	if (lock_commands(vm) != 0) {
		/* Another command holds the VM: shown, not stored (that is its job). */
		show_status(vm, RFS_TIMEOUT);
		return outcome_of(RFS_TIMEOUT);
	}
	before = state_now(vm);
	vm->busy[0] = '\0';
	o = run_command(vm, buf, len, authorised);
	record_status(vm, o.code);
	log_command(vm, buf, len, before, o);
	shape = vm->reshape;
	vm->reshape = false;
	pthread_mutex_unlock(&vm->cmd_lock);
	reshaped(vm, shape);
	return o;
}

/* --- jobs (SPEC §10) ----------------------------------------------------------- */

int rfs_vm_job(struct rfs_vm *vm, char *buf, int size)
{
	int len = 0;

	pthread_mutex_lock(&vm->open_lock);
	if (vm->job)
		len = rfs_job_format(vm->job, buf, size);
	pthread_mutex_unlock(&vm->open_lock);
	return len;
}

void rfs_vm_stop_job(struct rfs_vm *vm)
{
	struct rfs_job *job;

	pthread_mutex_lock(&vm->cmd_lock); /* no commit starts or replaces it meanwhile */
	pthread_mutex_lock(&vm->open_lock);
	job = vm->job;
	pthread_mutex_unlock(&vm->open_lock);
	if (job && rfs_job_cancel(job)) {
		rfs_log(LOG_INFO, "%s: commit job cancelled (unmount): still in state 5", vm->name);
		pthread_mutex_lock(&vm->open_lock);
		vm->facts.job_running = false;
		pthread_mutex_unlock(&vm->open_lock);
	}
	pthread_mutex_unlock(&vm->cmd_lock);
	if (job)
		rfs_job_wait(job); /* settled: its end takes cmd_lock */
}

/* --- disks ------------------------------------------------------------------ */

int rfs_vm_disks(struct rfs_vm *vm, struct rfs_disk ***out, size_t *n)
{
	struct rfs_disk **list;

	pthread_mutex_lock(&vm->open_lock);
	list = calloc(vm->ndisks ? vm->ndisks : 1, sizeof(*list));
	if (!list) {
		pthread_mutex_unlock(&vm->open_lock);
		return -ENOMEM;
	}
	for (unsigned d = 0; d < vm->ndisks; d++)
		list[d] = rfs_disk_get(vm->disks[d]);
	*n = vm->retired || !vm->owner ? 0 : vm->ndisks;
	pthread_mutex_unlock(&vm->open_lock);
	if (*n == 0)
		for (unsigned d = 0; d < vm->ndisks; d++)
			rfs_disk_put(list[d]);
	*out = list;
	return 0;
}

int rfs_vm_disk_open(struct rfs_vm *vm, struct rfs_disk *d, bool write)
{
	int ret = 0;

	pthread_mutex_lock(&vm->open_lock);
	if (vm->retired || rfs_disk_retired(d))
		ret = -ESTALE;
	else if (write && !rfs_disks_writable(vm->state, &vm->facts))
		ret = -EROFS;
	else {
		vm->nopen++;
		rfs_disk_count_open(d, 1);
	}
	pthread_mutex_unlock(&vm->open_lock);
	return ret;
}

void rfs_vm_disk_release(struct rfs_vm *vm, struct rfs_disk *d)
{
	bool idle;

	pthread_mutex_lock(&vm->open_lock);
	rfs_disk_count_open(d, -1);
	idle = --vm->nopen == 0;
	if (idle)
		pthread_cond_broadcast(&vm->closed);
	pthread_mutex_unlock(&vm->open_lock);
	/* a change waiting for the files to close: the store tries again */
	if (idle && __atomic_load_n(&vm->stale, __ATOMIC_RELAXED) && vm->cfg.hooks.idle)
		vm->cfg.hooks.idle(vm->cfg.hooks.arg, vm);
}

/* --- the living store --------------------------------------------------------- */

uint64_t rfs_vm_fingerprint(struct rfs_vm *vm)
{
	/* No lock: the watcher asks at every rescan and must not wait behind
	 * a long command (a failover waiting for freed space). */
	return __atomic_load_n(&vm->fp, __ATOMIC_RELAXED);
}

/* Would @desc give the disks the VM has (same names, same chains, none
 * broken)? Caller holds open_lock. */
static bool desc_matches(struct rfs_vm *vm, const struct rfs_vm_desc *desc)
{
	if (desc->broken || vm->facts.broken || desc->ndisks != vm->ndisks)
		return false;
	for (size_t i = 0; i < desc->ndisks; i++) {
		struct rfs_disk *d = find_disk(vm, desc->disks[i].name);

		if (!d || rfs_disk_sig(d) == 0 || rfs_disk_sig(d) != desc->disks[i].sig)
			return false;
	}
	return true;
}

int rfs_vm_refresh(struct rfs_vm *vm, const struct rfs_vm_desc *desc, uint64_t fp)
{
	bool content = false, shape = false;
	int r = 0;

	if (pthread_mutex_trylock(&vm->cmd_lock) != 0)
		return -EBUSY;
	pthread_mutex_lock(&vm->open_lock);
	shape = update_points(vm, desc); /* whatever the state (SPEC §9) */
	if (vm->has_overlay || vm->facts.saved_unknown || vm->state != RFS_STATE_REPLICATING) {
		/* failed over: stays on its point; revert follows the folder */
		__atomic_store_n(&vm->stale, true, __ATOMIC_RELAXED);
		__atomic_store_n(&vm->fp, fp, __ATOMIC_RELAXED);
	} else if (desc_matches(vm, desc)) {
		__atomic_store_n(&vm->fp, fp, __ATOMIC_RELAXED); /* a change that does not touch the disks */
		__atomic_store_n(&vm->stale, false, __ATOMIC_RELAXED);
	} else if (vm->nopen > 0) {
		__atomic_store_n(&vm->stale, true, __ATOMIC_RELAXED);
		r = -EBUSY;
	} else {
		r = build_disks(vm, desc, -1, false, &content, &shape);
		if (r == 0) {
			__atomic_store_n(&vm->fp, fp, __ATOMIC_RELAXED);
			__atomic_store_n(&vm->stale, false, __ATOMIC_RELAXED);
			if (content)
				notify_changed(vm, true);
		}
	}
	pthread_mutex_unlock(&vm->open_lock);
	pthread_mutex_unlock(&vm->cmd_lock);
	reshaped(vm, shape || content); /* content: the front end probes the tables again */
	return r;
}

bool rfs_vm_retire(struct rfs_vm *vm)
{
	bool gone = false;

	if (pthread_mutex_trylock(&vm->cmd_lock) != 0)
		return false;
	pthread_mutex_lock(&vm->open_lock);
	if (!vm->has_overlay && vm->nopen == 0 && vm->state == RFS_STATE_REPLICATING && !vm->test) {
		vm->retired = true;
		for (unsigned d = 0; d < vm->ndisks; d++)
			rfs_disk_retire(vm->disks[d]);
		gone = true;
		/* the object may live on in the kernel's references: give the
		 * lock back now, for the VM that takes the name next */
		__atomic_store_n(&vm->owner, false, __ATOMIC_RELAXED);
		if (vm->lock_fd >= 0)
			close(vm->lock_fd);
		vm->lock_fd = -1;
	} else if (vm->nopen > 0) {
		__atomic_store_n(&vm->stale, true, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&vm->open_lock);
	pthread_mutex_unlock(&vm->cmd_lock);
	return gone;
}

/* --- ownership (SPEC §8) ------------------------------------------------------ */

bool rfs_vm_owned(struct rfs_vm *vm)
{
	return __atomic_load_n(&vm->owner, __ATOMIC_RELAXED);
}

int rfs_vm_owner(struct rfs_vm *vm, char *buf, int size)
{
	int dirfd, len;

	if (rfs_vm_owned(vm))
		return rfs_owner_self(buf, (size_t)size);
	dirfd = vm_state_dir(vm, false);
	if (dirfd < 0)
		return snprintf(buf, (size_t)size, "unknown\n");
	len = rfs_owner_read(dirfd, buf, (size_t)size);
	close(dirfd);
	return len;
}

void rfs_vm_publish_owner(struct rfs_vm *vm)
{
	pthread_mutex_lock(&vm->cmd_lock);
	if (vm->lock_fd >= 0)
		rfs_owner_publish(vm->lock_fd);
	if (vm->test)
		rfs_vm_publish_owner(vm->test);
	pthread_mutex_unlock(&vm->cmd_lock);
	touch(vm, RFS_VM_OWNER);
}

bool rfs_vm_try_own(struct rfs_vm *vm)
{
	bool got;

	if (rfs_vm_owned(vm))
		return false;
	if (pthread_mutex_trylock(&vm->cmd_lock) != 0)
		return false;
	got = vm->lock_fd >= 0 || claim(vm) == 0;
	pthread_mutex_unlock(&vm->cmd_lock);
	if (!got)
		show_saved(vm); /* follow what the owner does */
	return got;
}

int rfs_vm_take_over(struct rfs_vm *vm, const struct rfs_vm_desc *desc, uint64_t fp)
{
	int r;

	pthread_mutex_lock(&vm->cmd_lock);
	pthread_mutex_lock(&vm->open_lock);
	rfs_saved_free(&vm->on_disk);
	memset(&vm->facts, 0, sizeof(vm->facts));
	vm->has_overlay = false;
	vm->local_status = false;
	r = load(vm, desc);
	if (r == 0) {
		__atomic_store_n(&vm->fp, fp, __ATOMIC_RELAXED);
		__atomic_store_n(&vm->owner, true, __ATOMIC_RELAXED);
		touch(vm, RFS_VM_OWNER);
		note_state(vm, rfs_state_shown(vm->state, &vm->facts));
		rfs_log(LOG_INFO, "%s: taken over, in state %d", vm->name, vm->state);
	}
	pthread_mutex_unlock(&vm->open_lock);
	pthread_mutex_unlock(&vm->cmd_lock);
	if (r == 0)
		reshaped(vm, true);
	return r;
}

/* We lost the owner lock: stop serving at once (disks retired: I/O fails,
 * overlays closed; nothing in the state folder is touched), so that the
 * daemon that owns the VM now is the only one writing. Caller holds
 * cmd_lock. */
static void fence(struct rfs_vm *vm, int why)
{
	rfs_log(LOG_ERR, "%s: its owner lock is no longer ours (%s): the VM is no longer served here",
		vm->name, why == -ESTALE ? "the owner file was replaced" : strerror(-why));
	if (vm->test)
		end_test(vm, false); /* its test VM goes with it (its owner takes both) */
	pthread_mutex_lock(&vm->open_lock);
	__atomic_store_n(&vm->owner, false, __ATOMIC_RELAXED);
	detach_overlays(vm);
	for (unsigned d = 0; d < vm->ndisks; d++) {
		rfs_disk_retire(vm->disks[d]);
		rfs_disk_put(vm->disks[d]);
	}
	vm->ndisks = 0;
	vm->has_overlay = false;
	pthread_mutex_unlock(&vm->open_lock);
	touch(vm, RFS_VM_OWNER);
	close(vm->lock_fd);
	vm->lock_fd = -1;
}

bool rfs_vm_check_owner(struct rfs_vm *vm)
{
	int dirfd, r = 0;

	if (!rfs_vm_owned(vm) || pthread_mutex_trylock(&vm->cmd_lock) != 0)
		return true;
	dirfd = vm_state_dir(vm, false);
	if (vm->lock_fd >= 0 && !vm->retired)
		r = dirfd < 0 ? dirfd : rfs_owner_check(dirfd, vm->lock_fd);
	if (dirfd >= 0)
		close(dirfd);
	if (r < 0)
		fence(vm, r);
	pthread_mutex_unlock(&vm->cmd_lock);
	if (r < 0)
		reshaped(vm, true);
	return r == 0;
}
