// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl/store.c - the VM set of a replica folder and its watcher (store.h).
 */
#include "store.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "log.h"
#include "savedstate.h"

/* After an event, wait for this much quiet before rescanning (a copy in
 * progress sends many), but never longer than SETTLE_MAX_MS. */
#define SETTLE_MS 100
#define SETTLE_MAX_MS 1000

/* What a change to a VM folder sends. IN_MODIFY is left out (one per write
 * of a copy); the copy's close (IN_CLOSE_WRITE) and the periodic rescan
 * catch a file that grew. */
#define WATCH_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | \
		    IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct rfs_store {
	/* immutable after open */
	struct rfs_store_config cfg;
	char replica_dir[PATH_MAX];
	char state_dir[PATH_MAX];
	char mountpoint[PATH_MAX];   /* "" when none */

	pthread_mutex_t rescan_lock; /* one rescan at a time */

	pthread_mutex_t lock;        /* guards vms, nvms and vms_dir */
	char vms_dir[PATH_MAX + 64]; /* the folder of the VM folders, as the last
				      * rescan resolved it */
	struct rfs_vm **vms;         /* sorted by name; one reference each */
	size_t nvms;

	rfs_vm_changed_fn fe_changed; /* the front end's hooks.changed */

	/* the watcher */
	pthread_t thread;
	bool running;                /* the thread was started */
	int inotify_fd;              /* -1 when inotify is unavailable */
	int kick_fd;                 /* eventfd: 1 = rescan now, stop = bit 2^32 */
	bool stopping;               /* atomic */
	bool announce;               /* atomic: log each VM that appears (not at mount) */
};

/* --- hooks the VMs call ----------------------------------------------------- */

static void vm_reshaped(void *arg, struct rfs_vm *vm)
{
	struct rfs_store *store = arg;

	if (store->cfg.reshaped)
		store->cfg.reshaped(store->cfg.arg);
}

static void vm_changed(void *arg, struct rfs_vm *vm, struct rfs_disk *d, bool content)
{
	struct rfs_store *store = arg;

	if (store->fe_changed)
		store->fe_changed(store->cfg.arg, vm, d, content);
}

static void vm_idle(void *arg, struct rfs_vm *vm)
{
	struct rfs_store *store = arg;
	uint64_t one = 1;

	if (store->kick_fd >= 0 && write(store->kick_fd, &one, sizeof(one)) < 0)
		rfs_log(LOG_DEBUG, "rescan kick: %s", strerror(errno));
}

/* Describe VM folder @name as it is now, with its fingerprint. The
 * fingerprint is taken before and after the scan: a folder that changed (or
 * went) meanwhile gets fingerprint 0, which matches no folder, so that the
 * next rescan describes it again rather than trusting a torn description. */
static int describe(void *arg, const char *name, struct rfs_vm_desc *out, uint64_t *fp)
{
	struct rfs_store *store = arg;
	char vms_dir[PATH_MAX + 64], dir[PATH_MAX + NAME_MAX + 66];
	uint64_t after;
	int r;

	pthread_mutex_lock(&store->lock);
	snprintf(vms_dir, sizeof(vms_dir), "%s", store->vms_dir);
	pthread_mutex_unlock(&store->lock);
	snprintf(dir, sizeof(dir), "%s/%s", vms_dir, name);
	r = rfs_discover_fingerprint(dir, fp);
	if (r < 0)
		return r;
	r = rfs_discover_vm(vms_dir, name, out);
	if (r == 0 && (rfs_discover_fingerprint(dir, &after) < 0 || after != *fp))
		*fp = 0;
	return r;
}

/* --- committed VMs (SPEC §10) ---------------------------------------------------- */

/* Is STATE/@name the state folder of a committed, standalone VM (vm.state
 * format 3)? Such a VM is served from it even when its replica folder is
 * gone. */
static bool committed_here(struct rfs_store *store, const char *name)
{
	char dir[PATH_MAX + NAME_MAX + 2];
	struct rfs_saved s;
	bool yes = false;
	int fd;

	if (snprintf(dir, sizeof(dir), "%s/%s", store->state_dir, name) >= (int)sizeof(dir))
		return false;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (rfs_saved_load(fd, &s) == 0)
		yes = s.state == RFS_STATE_COMMITTED && s.standalone;
	rfs_saved_free(&s);
	close(fd);
	return yes;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Add to the sorted folder names @names the committed VMs of the state
 * folder that have no replica folder (any more). 0 or -ENOMEM. */
static int add_committed(struct rfs_store *store, char ***names, size_t *n)
{
	DIR *d = opendir(store->state_dir);
	size_t before = *n;
	struct dirent *de;
	int r = 0;

	if (!d)
		return 0; /* no state folder yet: nothing committed */
	while (r == 0 && (de = readdir(d))) {
		char **grown;

		if (de->d_name[0] == '.' || rfs_discover_names(store->state_dir, de->d_name, store->cfg.mountpoint) ||
		    (before && bsearch(&(char *){ de->d_name }, *names, before, sizeof(char *), cmp_names)) ||
		    !committed_here(store, de->d_name))
			continue;
		grown = realloc(*names, (*n + 1) * sizeof(char *));
		if (!grown || !(grown[*n] = strdup(de->d_name))) {
			if (grown)
				*names = grown;
			r = -ENOMEM;
			break;
		}
		*names = grown;
		(*n)++;
	}
	closedir(d);
	if (*n > before)
		qsort(*names, *n, sizeof(char *), cmp_names);
	return r;
}

/* --- the VM list -------------------------------------------------------------- */

static int open_vm(struct rfs_store *store, const char *name, struct rfs_vm **out)
{
	struct rfs_vm_desc desc;
	uint64_t fp;
	int r;

	r = describe(store, name, &desc, &fp);
	if (r == -ENOENT && committed_here(store, name)) {
		/* no replica folder: the VM is its state folder */
		memset(&desc, 0, sizeof(desc));
		snprintf(desc.name, sizeof(desc.name), "%s", name);
		fp = 0;
		r = 0;
	}
	if (r < 0)
		return r;
	r = rfs_vm_open(&desc, fp, &store->cfg.vm, out);
	rfs_vm_desc_free(&desc);
	return r;
}

/* A changed folder: describe it again and let the VM follow when it can. */
static void refresh_vm(struct rfs_store *store, struct rfs_vm *vm)
{
	struct rfs_vm_desc desc;
	uint64_t fp;
	int r;

	r = describe(store, rfs_vm_name(vm), &desc, &fp);
	if (r < 0)
		return; /* gone meanwhile: the next rescan sees it */
	r = rfs_vm_refresh(vm, &desc, fp);
	if (r == -EBUSY)
		rfs_log(LOG_DEBUG, "%s: its folder changed; applied once its disks are closed",
			rfs_vm_name(vm));
	rfs_vm_desc_free(&desc);
}

/* The owner of @vm went away and we took its lock: load it as ours. */
static void take_over(struct rfs_store *store, struct rfs_vm *vm)
{
	struct rfs_vm_desc desc;
	uint64_t fp;

	if (describe(store, rfs_vm_name(vm), &desc, &fp) < 0) {
		memset(&desc, 0, sizeof(desc)); /* folder gone: no disks */
		fp = 0;
	}
	rfs_vm_take_over(vm, &desc, fp);
	rfs_vm_desc_free(&desc);
}

/* Does VM folder @vm_dir differ from what @vm was built from? */
static bool folder_changed(struct rfs_vm *vm, const char *vms_dir)
{
	char dir[PATH_MAX + NAME_MAX + 66];
	uint64_t fp;

	snprintf(dir, sizeof(dir), "%s/%s", vms_dir, rfs_vm_name(vm));
	return rfs_discover_fingerprint(dir, &fp) < 0 || fp != rfs_vm_fingerprint(vm);
}

static void watch_dir(struct rfs_store *store, const char *dir)
{
	if (store->inotify_fd >= 0 && inotify_add_watch(store->inotify_fd, dir, WATCH_MASK) < 0)
		rfs_log(LOG_DEBUG, "inotify %s: %s", dir, strerror(errno));
}

/* The folders among @names that have no VM in @cur yet (both sorted):
 * their indexes in @idx, returns how many. */
static size_t new_names(char **names, size_t n, struct rfs_vm **cur, size_t ncur, size_t *idx)
{
	size_t i = 0, j = 0, m = 0;

	while (i < n) {
		int c = j == ncur ? -1 : strcmp(names[i], rfs_vm_name(cur[j]));

		if (c < 0)
			idx[m++] = i++;
		else if (c == 0)
			i++, j++;
		else
			j++;
	}
	return m;
}

/* Open the VMs of new folders, several at a time: at mount that is every
 * VM, and what costs is waiting for the disk (cold images, state folders),
 * which threads overlap. Joined before returning (no thread survives into
 * the daemon's fork). */
struct open_job {
	struct rfs_store *store;
	char **names;
	const size_t *idx;
	size_t n;
	struct rfs_vm **out;     /* out[k]: the VM of names[idx[k]], or NULL */
	size_t next;             /* atomic: the next k to open */
};

#define OPEN_THREADS 8

static void *open_worker(void *arg)
{
	struct open_job *job = arg;
	size_t k;

	while ((k = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED)) < job->n)
		if (open_vm(job->store, job->names[job->idx[k]], &job->out[k]) < 0)
			job->out[k] = NULL;
	return NULL;
}

static void open_new(struct open_job *job)
{
	pthread_t th[OPEN_THREADS - 1];
	size_t nth = job->n / 4 < OPEN_THREADS - 1 ? job->n / 4 : OPEN_THREADS - 1;
	size_t started = 0;

	for (; started < nth; started++)
		if (pthread_create(&th[started], NULL, open_worker, job) != 0)
			break;
	open_worker(job);
	while (started--)
		pthread_join(th[started], NULL);
}

/*
 * Merge the sorted folder names @names into the sorted VM list: existing
 * VMs follow their folder, new folders (opened beforehand into @opened, in
 * the order of @names) join, VMs without a folder leave when they may.
 * Builds the new list in @next (one reference per VM). Returns true when
 * the list changed.
 */
static bool merge(struct rfs_store *store, const char *vms_dir, char **names, size_t n,
		  struct rfs_vm **cur, size_t ncur, struct rfs_vm **opened, struct rfs_vm **next,
		  size_t *nnext)
{
	size_t i = 0, j = 0, k = 0, o = 0;
	bool changed = false;

	while (i < n || j < ncur) {
		int c = i == n ? 1 : j == ncur ? -1 : strcmp(names[i], rfs_vm_name(cur[j]));

		if (c == 0) {
			if (!rfs_vm_owned(cur[j])) {
				if (rfs_vm_try_own(cur[j]))
					take_over(store, cur[j]);
			} else if (!rfs_vm_check_owner(cur[j])) {
				changed = true; /* fenced: its disks left */
			} else if (folder_changed(cur[j], vms_dir)) {
				refresh_vm(store, cur[j]);
			}
			next[k++] = rfs_vm_get(cur[j]);
			i++, j++;
		} else if (c < 0) {
			struct rfs_vm *vm = opened[o++];

			if (vm) {
				if (__atomic_load_n(&store->announce, __ATOMIC_RELAXED)) /* not at mount */
					rfs_log(LOG_INFO, "VM %s appeared", names[i]);
				next[k++] = vm;
				changed = true;
			}
			i++;
		} else {
			if (rfs_vm_retire(cur[j])) {
				rfs_log(LOG_INFO, "VM %s left", rfs_vm_name(cur[j]));
				changed = true;
			} else {
				next[k++] = rfs_vm_get(cur[j]);
			}
			j++;
		}
	}
	*nnext = k;
	return changed;
}

static int rescan_locked(struct rfs_store *store, bool *changed)
{
	char vms_dir[PATH_MAX + 64];
	struct rfs_vm **cur, **next, **old;
	struct open_job job = { 0 };
	size_t n = 0, ncur, nnext, nold, *idx = NULL;
	char **names = NULL;
	int r;

	r = rfs_discover_vms_dir(store->replica_dir, vms_dir, sizeof(vms_dir));
	if (r == 0)
		r = rfs_discover_list(vms_dir, store->state_dir, store->cfg.mountpoint, &names, &n);
	if (r == 0)
		r = add_committed(store, &names, &n);
	if (r < 0) {
		rfs_discover_list_free(names, n);
		return r;
	}
	pthread_mutex_lock(&store->lock);
	snprintf(store->vms_dir, sizeof(store->vms_dir), "%s", vms_dir);
	pthread_mutex_unlock(&store->lock);
	watch_dir(store, store->replica_dir);
	watch_dir(store, vms_dir);
	for (size_t i = 0; i < n; i++) {
		char dir[PATH_MAX + NAME_MAX + 66];

		snprintf(dir, sizeof(dir), "%s/%s", vms_dir, names[i]);
		watch_dir(store, dir);
	}
	r = rfs_store_vms(store, &cur, &ncur);
	if (r < 0)
		goto out_names;
	next = calloc(n + ncur + 1, sizeof(*next));
	job.idx = idx = calloc(n + 1, sizeof(*idx));
	job.out = calloc(n + 1, sizeof(*job.out));
	if (!next || !idx || !job.out) {
		free(next);
		r = -ENOMEM;
		goto out_cur;
	}
	job.store = store;
	job.names = names;
	job.n = new_names(names, n, cur, ncur, idx);
	open_new(&job);
	*changed = merge(store, vms_dir, names, n, cur, ncur, job.out, next, &nnext);
	pthread_mutex_lock(&store->lock);
	old = store->vms;
	nold = store->nvms;
	store->vms = next;
	store->nvms = nnext;
	pthread_mutex_unlock(&store->lock);
	for (size_t i = 0; i < nold; i++)
		rfs_vm_put(old[i]);
	free(old);
out_cur:
	free(idx);
	free(job.out);
	for (size_t i = 0; i < ncur; i++)
		rfs_vm_put(cur[i]);
	free(cur);
out_names:
	rfs_discover_list_free(names, n);
	return r;
}

int rfs_store_rescan(struct rfs_store *store)
{
	bool changed = false;
	int r;

	pthread_mutex_lock(&store->rescan_lock);
	r = rescan_locked(store, &changed);
	pthread_mutex_unlock(&store->rescan_lock);
	if (changed && store->cfg.reshaped)
		store->cfg.reshaped(store->cfg.arg);
	return r;
}

size_t rfs_store_count(struct rfs_store *store)
{
	size_t n;

	pthread_mutex_lock(&store->lock);
	n = store->nvms;
	pthread_mutex_unlock(&store->lock);
	return n;
}

int rfs_store_vms(struct rfs_store *store, struct rfs_vm ***out, size_t *n)
{
	struct rfs_vm **list;

	pthread_mutex_lock(&store->lock);
	list = calloc(store->nvms ? store->nvms : 1, sizeof(*list));
	if (!list) {
		pthread_mutex_unlock(&store->lock);
		return -ENOMEM;
	}
	for (size_t i = 0; i < store->nvms; i++)
		list[i] = rfs_vm_get(store->vms[i]);
	*n = store->nvms;
	pthread_mutex_unlock(&store->lock);
	*out = list;
	return 0;
}

/* --- open, close ---------------------------------------------------------------- */

int rfs_store_open(const struct rfs_store_config *cfg, struct rfs_store **out)
{
	struct rfs_store *store = calloc(1, sizeof(*store));
	bool changed;
	int r;

	if (!store)
		return -ENOMEM;
	store->cfg = *cfg;
	snprintf(store->replica_dir, sizeof(store->replica_dir), "%s", cfg->replica_dir);
	snprintf(store->state_dir, sizeof(store->state_dir), "%s", cfg->state_dir);
	store->cfg.replica_dir = store->replica_dir;
	store->cfg.state_dir = store->state_dir;
	snprintf(store->mountpoint, sizeof(store->mountpoint), "%s", cfg->mountpoint ? cfg->mountpoint : "");
	store->cfg.mountpoint = store->mountpoint[0] ? store->mountpoint : NULL;
	store->fe_changed = cfg->vm.hooks.changed;
	store->cfg.vm.hooks.changed = vm_changed;
	store->cfg.vm.hooks.reshaped = vm_reshaped;
	store->cfg.vm.hooks.idle = vm_idle;
	store->cfg.vm.hooks.describe = describe;
	store->cfg.vm.hooks.arg = store;
	store->inotify_fd = -1;
	store->kick_fd = -1;
	pthread_mutex_init(&store->rescan_lock, NULL);
	pthread_mutex_init(&store->lock, NULL);
	r = rescan_locked(store, &changed);
	if (r < 0) {
		rfs_store_close(store);
		return r;
	}
	*out = store;
	return 0;
}

void rfs_store_close(struct rfs_store *store)
{
	if (!store)
		return;
	rfs_store_stop(store);
	for (size_t i = 0; i < store->nvms; i++)
		rfs_vm_put(store->vms[i]);
	free(store->vms);
	pthread_mutex_destroy(&store->lock);
	pthread_mutex_destroy(&store->rescan_lock);
	free(store);
}

/* --- the watcher ------------------------------------------------------------------- */

/* Read and drop every pending event of @fd. */
static void drain(int fd)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

/* After a first event: wait until the folder is quiet for SETTLE_MS (a copy
 * sends many events), at most SETTLE_MAX_MS. */
static void settle(struct rfs_store *store)
{
	struct pollfd pfd = { .fd = store->inotify_fd, .events = POLLIN };

	for (int waited = 0; waited < SETTLE_MAX_MS; waited += SETTLE_MS) {
		if (poll(&pfd, 1, SETTLE_MS) <= 0)
			return;
		drain(store->inotify_fd);
	}
}

static void *watcher_main(void *arg)
{
	struct rfs_store *store = arg;
	struct pollfd pfd[2] = {
		{ .fd = store->kick_fd, .events = POLLIN },
		{ .fd = store->inotify_fd, .events = POLLIN },
	};

	while (!__atomic_load_n(&store->stopping, __ATOMIC_ACQUIRE)) {
		int n = poll(pfd, store->inotify_fd >= 0 ? 2 : 1, (int)store->cfg.rescan_ms);

		if (n < 0 && errno != EINTR)
			break;
		if (pfd[0].revents & POLLIN)
			drain(store->kick_fd);
		if (__atomic_load_n(&store->stopping, __ATOMIC_ACQUIRE))
			break;
		if (store->inotify_fd >= 0 && (pfd[1].revents & POLLIN)) {
			drain(store->inotify_fd);
			settle(store);
		}
		rfs_store_rescan(store);
	}
	return NULL;
}

/* The daemon forked since the VMs were opened: name the new pid. */
static void publish_owners(struct rfs_store *store)
{
	struct rfs_vm **vms;
	size_t n;

	if (rfs_store_vms(store, &vms, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		rfs_vm_publish_owner(vms[i]);
		rfs_vm_put(vms[i]);
	}
	free(vms);
}

int rfs_store_start(struct rfs_store *store)
{
	int r;

	if (store->running)
		return 0;
	store->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (store->kick_fd < 0)
		return -errno;
	store->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (store->inotify_fd < 0)
		rfs_log(LOG_WARNING, "inotify unavailable (%s): rescanning every %u ms only",
			strerror(errno), store->cfg.rescan_ms);
	__atomic_store_n(&store->announce, true, __ATOMIC_RELAXED);
	rfs_store_rescan(store); /* sets the watches */
	publish_owners(store);
	r = pthread_create(&store->thread, NULL, watcher_main, store);
	if (r != 0) {
		rfs_store_stop(store);
		return -r;
	}
	store->running = true;
	return 0;
}

void rfs_store_stop(struct rfs_store *store)
{
	struct rfs_vm **vms;
	uint64_t one = 1;
	size_t n;

	if (store->running) {
		__atomic_store_n(&store->stopping, true, __ATOMIC_RELEASE);
		if (write(store->kick_fd, &one, sizeof(one)) < 0)
			rfs_log(LOG_WARNING, "watcher stop: %s", strerror(errno));
		pthread_join(store->thread, NULL);
		store->running = false;
	}
	/* No command comes any more: end the jobs (a commit goes back to 5). */
	if (rfs_store_vms(store, &vms, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			rfs_vm_stop_job(vms[i]);
			rfs_vm_put(vms[i]);
		}
		free(vms);
	}
	if (store->inotify_fd >= 0)
		close(store->inotify_fd);
	if (store->kick_fd >= 0)
		close(store->kick_fd);
	store->inotify_fd = store->kick_fd = -1;
}
