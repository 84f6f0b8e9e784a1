/* Worker hosts on the caller's side: the plugin's names checked and the host found once, for a
 * hosted pool (shk_task_pool_create_hosted) and for the one-call form (mode SHK_TASK_HOSTED). */
#include <stdlib.h>
#include <string.h>

#include "task_internal.h"
#include "debug.h"

int shk__task_host_make(const char *module, const char *function, shk__task_host **out) {
  *out = NULL;
  if (!module || !function || !*module || !*function) return SHK_EINVAL;
  size_t mlen = strlen(module), flen = strlen(function);
  shk__task_host *host = shk__calloc(1, sizeof *host);
  if (!host) return SHK_ENOMEM;
  if (mlen >= sizeof host->module || flen >= sizeof host->function) {
    free(host);
    return SHK_ERANGE;
  }
  memcpy(host->module, module, mlen + 1);
  memcpy(host->function, function, flen + 1);
  int rc = shk__task_host_find(host->exe, sizeof host->exe);
  if (rc != SHK_OK) {
    free(host);
    return rc;
  }
  *out = host;
  return SHK_OK;
}

int shk__task_hosted_fn(const shk_task_chunk *chunk, shk_task_out *out) {
  (void)chunk;
  (void)out;
  return SHK_EUNSUPPORTED;
}

static int task_pool_create_hosted_impl(unsigned workers, const char *module_path,
                                        const char *function_name, shk_task_pool **out) {
  shk__error_clear_os();
  if (out) *out = NULL;
  if (!out) return SHK_EINVAL;
  shk__task_host *host;
  int rc = shk__task_host_make(module_path, function_name, &host);
  if (rc != SHK_OK) return rc;
  return shk__task_pool_create_hosting(workers, false, host, out);
}

int shk_task_pool_create_hosted(unsigned workers, const char *module_path,
                                const char *function_name, shk_task_pool **out) {
  return SHK__DEBUG_RET(SHK__DEBUG_TASK,
                        task_pool_create_hosted_impl(workers, module_path, function_name, out));
}

int shk__task_run_hosted(const void *data, size_t size, shk_task_fn fn,
                         const shk_task_options *opts, shk_task_results **results) {
  if (results) *results = NULL;
  if (fn || !results) return SHK_EINVAL;
  /* The call's own checks, as for any process-mode call. */
  shk_task_options o = *opts;
  o.mode = SHK_TASK_PROCESSES;
  unsigned workers = o.workers ? o.workers : shk__task_default_workers();
  shk__task_call call;
  int rc = shk__task_call_init(&call, data, size, shk__task_hosted_fn, &o, workers);
  if (rc != SHK_OK) return rc;
  shk__task_host *host;
  rc = shk__task_host_make(opts->module_path, opts->function_name, &host);
  if (rc != SHK_OK) return rc;
  /* More workers than chunks would only be started and stopped. */
  if (call.chunks < workers) workers = (unsigned)call.chunks;
  shk_task_pool *pool;
  rc = shk__task_pool_create_hosting(workers, true, host, &pool);
  if (rc != SHK_OK) return rc;
  rc = shk__task_pool_run(pool, &call, results);
  shk_task_pool_free(pool);
  return rc;
}
