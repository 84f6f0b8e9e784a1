/* The call's set-up: a private duplicate of the communicator, the host's workers divided among
 * the ranks that share it, and the up-front check that every rank passed the same parameters
 * (one allreduce of each value and its complement: the maximum and the minimum at once). */
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpi_internal.h"

/* The largest message: below 2 GiB (MPI counts are int). SHK_MPI_MESSAGE_MAX lowers it, so
 * that tests cover the several-message path without gigabytes of memory. */
static size_t message_max(void) {
  size_t max = (size_t)1 << 30;
  const char *env = getenv("SHK_MPI_MESSAGE_MAX");
  if (env && *env) {
    char *end;
    unsigned long long v = strtoull(env, &end, 10);
    if (*end == '\0' && v > 0 && v < max) max = (size_t)v;
  }
  return max;
}

/* The host's workers (opts->workers, 0: its CPUs), divided among the ranks on this host. */
static int local_workers(MPI_Comm comm, const shk_task_options *opts, unsigned *workers) {
  MPI_Comm node;
  if (MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) != MPI_SUCCESS)
    return SHK_EOS;
  int at = 0, n = 1;
  MPI_Comm_rank(node, &at);
  MPI_Comm_size(node, &n);
  MPI_Comm_free(&node);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  unsigned host = opts && opts->workers ? opts->workers : (cpus > 0 ? (unsigned)cpus : 1u);
  unsigned share = host / (unsigned)n + ((unsigned)at < host % (unsigned)n ? 1u : 0u);
  /* A rank that the launcher bound to some CPUs (Open MPI binds to a core by default at 1 or
   * 2 ranks) passes that binding on to its forked workers: more workers than its CPUs would only
   * take turns on them. */
#ifdef CPU_COUNT /* Linux; other systems have no portable query */
  cpu_set_t set;
  if (!(opts && opts->workers) && sched_getaffinity(0, sizeof set, &set) == 0 &&
      (unsigned)CPU_COUNT(&set) < share)
    share = (unsigned)CPU_COUNT(&set);
#endif
  if (share == 0) share = 1;
  *workers = share < SHK_TASK_WORKERS_MAX ? share : SHK_TASK_WORKERS_MAX;
  return SHK_OK;
}

/* What this rank alone can tell is wrong. */
static int check_alone(const shk__mpi_args *a, int ranks) {
  const shk_task_options *o = a->opts;
  if (!a->fn || !a->results_ok || (a->flags & ~(unsigned)SHK_MPI_DISTRIBUTED)) return SHK_EINVAL;
  if (a->root < 0 || a->root >= ranks) return SHK_EINVAL;
  if (o && o->mode == SHK_TASK_HOSTED) return SHK_EUNSUPPORTED;
  if (o && o->mode != SHK_TASK_PROCESSES && o->mode != SHK_TASK_THREADS &&
      o->mode != SHK_TASK_INLINE)
    return SHK_EINVAL;
  if (o && (o->chunks > SHK_TASK_CHUNKS_MAX || o->workers > SHK_TASK_WORKERS_MAX)) return SHK_ERANGE;
  if (o && o->arg_size > 0 && !o->arg) return SHK_EINVAL;
  return a->local_rc;
}

enum { V_RC, V_KIND, V_ROOT, V_FLAGS, V_CHUNKS, V_HALO, V_ITEM, V_MODE, V_MESSAGE, V_FILE_SIZE,
       V_ROOT_SIZE, V_WORKERS, V_COUNT, V_COMPARED = V_FILE_SIZE + 1 };

int shk__mpi_setup(MPI_Comm comm, const shk__mpi_args *args, shk__mpi_call *call) {
  memset(call, 0, sizeof *call);
  if (MPI_Comm_dup(comm, &call->comm) != MPI_SUCCESS) return SHK_EOS;
  MPI_Comm_rank(call->comm, &call->rank);
  MPI_Comm_size(call->comm, &call->ranks);
  int len = 0;
  MPI_Get_processor_name(call->host, &len);
  call->host[len > 0 && len <= MPI_MAX_PROCESSOR_NAME ? len : 0] = '\0';
  int rc = local_workers(call->comm, args->opts, &call->workers);

  const shk_task_options *o = args->opts;
  int local = rc != SHK_OK ? rc : check_alone(args, call->ranks);
  uint64_t v[V_COUNT] = {0};
  v[V_RC] = (uint64_t)(-(int64_t)local);
  v[V_KIND] = (uint64_t)args->kind;
  v[V_ROOT] = (uint64_t)(int64_t)args->root;
  v[V_FLAGS] = args->flags;
  v[V_CHUNKS] = o ? o->chunks : 0;
  v[V_HALO] = o ? o->halo : 0;
  v[V_ITEM] = o && o->item_size > 1 ? o->item_size : 1;
  v[V_MODE] = o ? (uint64_t)o->mode : 0;
  v[V_MESSAGE] = message_max();
  v[V_FILE_SIZE] = args->kind == SHK__MPI_FILE_INPUT ? args->size : 0;
  v[V_ROOT_SIZE] = args->kind == SHK__MPI_ROOT_INPUT && call->rank == args->root ? args->size : 0;
  v[V_WORKERS] = call->workers;
  uint64_t both[2 * V_COUNT], all[2 * V_COUNT];
  for (int i = 0; i < V_COUNT; i++) {
    both[i] = v[i];
    both[V_COUNT + i] = ~v[i];
  }
  if (MPI_Allreduce(both, all, 2 * V_COUNT, MPI_UINT64_T, MPI_MAX, call->comm) != MPI_SUCCESS) {
    shk__mpi_teardown(call);
    return SHK_EOS;
  }
  rc = -(int)(int64_t)all[V_RC];
  for (int i = V_KIND; rc == SHK_OK && i < V_COMPARED; i++)
    if (all[i] != ~all[V_COUNT + i]) rc = SHK_EINVAL; /* maximum != minimum: ranks differ */
  if (rc == SHK_OK) {
    call->root = args->root;
    call->flags = args->flags;
    call->total = args->kind == SHK__MPI_FILE_INPUT ? all[V_FILE_SIZE] : all[V_ROOT_SIZE];
    call->halo = all[V_HALO];
    call->item_size = all[V_ITEM];
    call->message_max = all[V_MESSAGE];
    call->fn = args->fn;
    /* Default: every rank's workers busy, as shk_task_run() defaults to one chunk per worker. */
    call->chunks = all[V_CHUNKS] ? all[V_CHUNKS] : (size_t)call->ranks * all[V_WORKERS];
    if (call->chunks > SHK_TASK_CHUNKS_MAX) rc = SHK_ERANGE;
    else if (call->total % call->item_size != 0) rc = SHK_EINVAL;
    if (o) call->local = *o;
    call->local.workers = call->workers;
  }
  if (rc != SHK_OK) shk__mpi_teardown(call);
  return rc;
}

void shk__mpi_teardown(shk__mpi_call *call) {
  if (call->comm != MPI_COMM_NULL) MPI_Comm_free(&call->comm);
  call->comm = MPI_COMM_NULL;
}
