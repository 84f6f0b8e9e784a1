/* Results: every chunk's status, code, bytes and place, with the rank and host that ran it,
 * gathered to the root in global chunk order (or kept by each rank), and the call's code. */
#include <stdlib.h>
#include <string.h>

#include "mpi_internal.h"

#define HOST_SIZE (MPI_MAX_PROCESSOR_NAME + 1)

enum { TAG_RECORDS = 3, TAG_HOST = 4, TAG_BYTES = 5 };

struct shk_mpi_results {
  size_t count;
  shk_mpi_result *items;
  char *hosts;          /* HOST_SIZE bytes per rank */
  unsigned char *bytes; /* every chunk's bytes, in order */
};

/* One chunk's result on the wire: fixed sizes, no pointers. */
typedef struct shk__mpi_record {
  int32_t status;
  int32_t code;
  uint64_t size;
  uint64_t offset;
  uint64_t length;
} shk__mpi_record;

size_t shk_mpi_results_count(const shk_mpi_results *results) {
  return results ? results->count : 0;
}

const shk_mpi_result *shk_mpi_results_get(const shk_mpi_results *results, size_t i) {
  return results && i < results->count ? &results->items[i] : NULL;
}

void shk_mpi_results_free(shk_mpi_results *results) {
  if (!results) return;
  free(results->items);
  free(results->hosts);
  free(results->bytes);
  free(results);
}

/* This rank's records and its bytes, concatenated in chunk order. */
static int pack_local(const shk__mpi_call *call, const shk_task_results *local,
                      shk__mpi_record **recs, unsigned char **bytes, size_t *nbytes) {
  size_t n = shk_task_results_count(local);
  (void)call;
  *recs = NULL;
  *bytes = NULL;
  *nbytes = 0;
  for (size_t i = 0; i < n; i++) *nbytes += shk_task_results_get(local, i)->size;
  *recs = calloc(n ? n : 1, sizeof **recs);
  *bytes = malloc(*nbytes ? *nbytes : 1);
  if (!*recs || !*bytes) {
    free(*recs);
    free(*bytes);
    *recs = NULL;
    *bytes = NULL;
    return SHK_ENOMEM;
  }
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    const shk_task_result *r = shk_task_results_get(local, i);
    (*recs)[i] = (shk__mpi_record){(int32_t)r->status, r->code, r->size, 0, r->length};
    if (r->size) memcpy(*bytes + at, r->data, r->size);
    at += r->size;
  }
  return SHK_OK;
}

/* Fills items [first, first + n) from records whose bytes start at bytes; offsets and indexes
 * are recomputed from the global split. */
static void fill(shk_mpi_results *res, const shk__mpi_call *call, size_t at, size_t first,
                 size_t n, const shk__mpi_record *recs, const unsigned char *bytes, int rank) {
  for (size_t i = 0; i < n; i++) {
    shk_mpi_result *it = &res->items[at + i];
    size_t off, size, readable;
    shk__mpi_chunk_bounds(call->total, call->item_size, call->halo, call->chunks, first + i, &off,
                          &size, &readable);
    it->status = (shk_task_status)recs[i].status;
    it->code = recs[i].code;
    it->size = (size_t)recs[i].size;
    it->data = it->size ? bytes : NULL;
    it->offset = off;
    it->length = size;
    it->index = first + i;
    it->rank = rank;
    it->host = res->hosts + (size_t)rank * HOST_SIZE;
    bytes += it->size;
  }
}

static shk_mpi_results *results_new(size_t count, int ranks, size_t nbytes) {
  shk_mpi_results *res = calloc(1, sizeof *res);
  if (!res) return NULL;
  res->count = count;
  res->items = calloc(count ? count : 1, sizeof *res->items);
  res->hosts = calloc((size_t)ranks, HOST_SIZE);
  res->bytes = malloc(nbytes ? nbytes : 1);
  if (!res->items || !res->hosts || !res->bytes) {
    shk_mpi_results_free(res);
    return NULL;
  }
  return res;
}

static int keep_own(const shk__mpi_call *call, const shk__mpi_record *recs,
                    const unsigned char *bytes, size_t nbytes, shk_mpi_results **out) {
  shk__mpi_run run = shk__mpi_run_of(call, call->rank);
  shk_mpi_results *res = results_new(run.count, call->ranks, nbytes);
  if (!res) return SHK_ENOMEM;
  memcpy(res->hosts + (size_t)call->rank * HOST_SIZE, call->host, HOST_SIZE);
  if (nbytes) memcpy(res->bytes, bytes, nbytes);
  fill(res, call, 0, run.first, run.count, recs, res->bytes, call->rank);
  *out = res;
  return SHK_OK;
}

/* The root's side of the gather: records and hosts first (their sizes are known from the
 * split), then the bytes, whose sizes the records give. */
static int gather_root(const shk__mpi_call *call, const shk__mpi_record *own,
                       const unsigned char *own_bytes, size_t own_nbytes, shk_mpi_results **out) {
  shk__mpi_record *recs = calloc(call->chunks ? call->chunks : 1, sizeof *recs);
  char *hosts = calloc((size_t)call->ranks, HOST_SIZE);
  int rc = recs && hosts ? SHK_OK : SHK_ENOMEM;
  shk__mpi_reqs reqs = {0};
  for (int r = 0; r < call->ranks && rc == SHK_OK; r++) {
    shk__mpi_run run = shk__mpi_run_of(call, r);
    if (r == call->root) {
      memcpy(recs + run.first, own, run.count * sizeof *recs);
      memcpy(hosts + (size_t)r * HOST_SIZE, call->host, HOST_SIZE);
      continue;
    }
    rc = shk__mpi_irecv(call, recs + run.first, run.count * sizeof *recs, r, TAG_RECORDS, &reqs);
    if (rc == SHK_OK)
      rc = shk__mpi_irecv(call, hosts + (size_t)r * HOST_SIZE, HOST_SIZE, r, TAG_HOST, &reqs);
  }
  rc = shk__mpi_wait(&reqs, rc);
  size_t nbytes = 0;
  for (size_t i = 0; rc == SHK_OK && i < call->chunks; i++) nbytes += recs[i].size;
  shk_mpi_results *res = rc == SHK_OK ? results_new(call->chunks, call->ranks, nbytes) : NULL;
  if (rc == SHK_OK && !res) rc = SHK_ENOMEM;
  if (res) memcpy(res->hosts, hosts, (size_t)call->ranks * HOST_SIZE);
  /* The senders wait for this before their bytes move: a root that cannot hold them says so. */
  if (MPI_Bcast(&rc, 1, MPI_INT, call->root, call->comm) != MPI_SUCCESS && rc == SHK_OK) rc = SHK_EOS;
  size_t at = 0;
  for (int r = 0; r < call->ranks && rc == SHK_OK; r++) {
    shk__mpi_run run = shk__mpi_run_of(call, r);
    size_t n = 0;
    for (size_t i = 0; i < run.count; i++) n += recs[run.first + i].size;
    if (r == call->root) {
      if (own_nbytes) memcpy(res->bytes + at, own_bytes, own_nbytes);
    } else {
      rc = shk__mpi_irecv(call, res->bytes + at, n, r, TAG_BYTES, &reqs);
    }
    fill(res, call, run.first, run.first, run.count, recs + run.first, res->bytes + at, r);
    at += n;
  }
  rc = shk__mpi_wait(&reqs, rc);
  free(recs);
  free(hosts);
  if (rc != SHK_OK) {
    shk_mpi_results_free(res);
    return rc;
  }
  *out = res;
  return SHK_OK;
}

int shk__mpi_results_collect(const shk__mpi_call *call, const shk_task_results *local,
                             shk_mpi_results **out) {
  *out = NULL;
  shk__mpi_record *recs;
  unsigned char *bytes;
  size_t nbytes;
  int rc = shk__mpi_agree(call, pack_local(call, local, &recs, &bytes, &nbytes));
  if (rc != SHK_OK) {
    free(recs);
    free(bytes);
    return rc;
  }
  if (call->flags & SHK_MPI_DISTRIBUTED) {
    rc = keep_own(call, recs, bytes, nbytes, out);
  } else if (call->rank == call->root) {
    rc = gather_root(call, recs, bytes, nbytes, out);
  } else {
    shk__mpi_run run = shk__mpi_run_of(call, call->rank);
    shk__mpi_reqs reqs = {0};
    rc = shk__mpi_isend(call, recs, run.count * sizeof *recs, call->root, TAG_RECORDS, &reqs);
    if (rc == SHK_OK) rc = shk__mpi_isend(call, call->host, HOST_SIZE, call->root, TAG_HOST, &reqs);
    rc = shk__mpi_wait(&reqs, rc);
    int root_rc = SHK_OK;
    if (MPI_Bcast(&root_rc, 1, MPI_INT, call->root, call->comm) != MPI_SUCCESS) root_rc = SHK_EOS;
    if (rc == SHK_OK && root_rc == SHK_OK) {
      rc = shk__mpi_isend(call, bytes, nbytes, call->root, TAG_BYTES, &reqs);
      rc = shk__mpi_wait(&reqs, rc);
    }
  }
  free(recs);
  free(bytes);
  /* One code everywhere (a root that could not hold the results fails every rank). */
  int all = shk__mpi_agree(call, rc);
  if (all != SHK_OK) {
    shk_mpi_results_free(*out);
    *out = NULL;
  }
  return all;
}

/* Severity of a local code: the chunk outcomes in shk_task_run()'s order of precedence, then
 * any failure without results (most negative code wins), so that every rank picks the same. */
static int severity(int rc) {
  switch (rc) {
    case SHK_OK: return 0;
    case SHK_ECHUNK: return 1;
    case SHK_ECANCELED: return 2;
    case SHK_ETIMEDOUT: return 3;
    case SHK_ECRASHED: return 4;
    default: return 100 - rc;
  }
}

int shk__mpi_outcome(const shk__mpi_call *call, int local_rc) {
  int s = severity(local_rc), all = s;
  if (MPI_Allreduce(&s, &all, 1, MPI_INT, MPI_MAX, call->comm) != MPI_SUCCESS) return SHK_EOS;
  static const int codes[] = {SHK_OK, SHK_ECHUNK, SHK_ECANCELED, SHK_ETIMEDOUT, SHK_ECRASHED};
  return all < 5 ? codes[all] : 100 - all;
}
