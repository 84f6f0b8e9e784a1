#!/usr/bin/env bash
# Our own mutation measurement (issue 17): plants one realistic bug at a time in src/ or tools/
# (a bound moved by one, an error path that returns OK, a check of shared-memory input dropped,
# a cleanup skipped on a failure path, a previous signal handler lost, an escape boundary moved),
# rebuilds only the tests that cover that area in the native gcc build, runs them with a timeout
# and says whether they caught it. Every file is restored afterwards (also on Ctrl-C).
# Usage: bash ci/mutate.sh [BUILD_DIR (default build/gcc)] [ID ...]
# Env: SHK_JOBS (default 2), SHK_MUTATE_TIMEOUT (seconds per test run, default 300),
# SHK_MUTATE_ALL=1 (run the whole native suite for each mutation, not only the area's tests).
# Prints one line per mutation (caught / MISSED / not-applied / build-failed / not-built) and the
# catch rate;
# the logs go to BUILD_DIR/mutate/. See docs/coverage.md. A run killed outright (SIGKILL) leaves the
# mutated file and its original beside it as FILE.orig: move that back.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build/gcc}
[ $# -gt 0 ] && shift
case $build in /*) ;; *) build=$root/$build ;; esac
only=" $* "
jobs=${SHK_JOBS:-2}
limit=${SHK_MUTATE_TIMEOUT:-300}
logs=$build/mutate
mkdir -p "$logs"
[ -f "$build/build.ninja" ] || { echo "configure $build first (see ci/test.sh)"; exit 2; }

# id @ file @ sed script (must change exactly the line meant) | ctest names | what it plants
mutations=(
"task-chunks-max@src/common/task_chunks.c@s/count > SHK_TASK_CHUNKS_MAX) return SHK_ERANGE/count >= SHK_TASK_CHUNKS_MAX) return SHK_ERANGE/@task task_bounds@chunk count limit moved by one"
"task-halo-end@src/common/task_chunks.c@s/size_t left = size - b.offset - b.size;/size_t left = size - b.offset;/@task task_bounds@halo at the input's end reads past it"
"task-chunk-size@src/common/task_worker.c@s/readable > total - off || size > readable ||/readable > total - off ||/@task task_bounds task_workers faults_table@worker drops the chunk size check of the table"
"task-out-used@src/common/task_worker.c@s/out->used > out->seg->size)/out->used >= out->seg->size)/@task task_bounds task_workers faults_table@worker's output-used check moved by one"
"task-input-size@src/common/task_worker.c@s/|| job->input_size > m->seg.size - job->input_offset)/)/@task task_bounds task_workers faults_table@worker drops the input size check"
"task-worker-index@src/common/task_worker.c@0,/boot->index >= ctl->workers ||/s//boot->index > ctl->workers ||/@task task_workers task_bounds faults_table@worker index bound moved by one"
"task-arg-max@src/common/task_worker.c@s/arg_size > SHK_TASK_ARG_MAX/arg_size > SHK_TASK_ARG_MAX + 1/@task task_bounds faults_table@worker's argument size check moved by one"
"shm-name-max@src/common/shm.c@s/len > SHK_SHM_NAME_MAX/len > SHK_SHM_NAME_MAX + 1/@shm shm_bounds shm_names@name length limit moved by one"
"shm-find-end@src/common/shm.c@s/len <= s->seg.size - (start - base)/len <= s->seg.size - (start - base) + 1/@shm shm_bounds task@shm_find accepts one byte past the end"
"shm-create-unlink@src/common/shm.c@s/    if (name) shk__os_segment_unlink(os_name);/    (void)os_name;/@shm shm_bounds faults_shm faults_alloc@failed create leaves its name behind"
"shm-open-close@src/common/shm.c@s/  if (rc != SHK_OK) shk__os_segment_close(&seg);/  (void)0;/@shm faults_shm faults_alloc@failed open leaves its mapping"
"seg-open-empty@src/posix/segment.c@s/st.st_size <= 0/st.st_size < 0/@shm shm_bounds shm_edges faults_shm os_segment@empty segment opened by name"
"seg-size-cleanup@src/posix/segment.c@s/  if (os_name) shm_unlink(os_name);/  (void)os_name;/@shm faults_shm os_segment@failed size leaves the name"
"buf-view-range@src/common/buf_view.c@s/start > end || end > buf->size/start > end || end > buf->size + 1/@buf buf_view buf_bounds@copy range end moved by one"
"buf-view-index@src/common/buf_view.c@0,/if (i >= view->count) return SHK_ERANGE;/s//if (i > view->count) return SHK_ERANGE;/@buf buf_view buf_bounds@view element index bound moved by one"
"buf-view-fit@src/common/buf_view.c@s/spec->offset + last + elem > buf->size/spec->offset + last + elem > buf->size + 1/@buf buf_view buf_bounds@view may end one byte past its buffer"
"lens-range-order@src/common/lens_reader.c@s/rec->len > 0xFFFFFFu || rec->b < rec->a || rec->flags != 0/rec->len > 0xFFFFFFu || rec->flags != 0/@lens lens_corrupt lens_bounds@reader drops a record's order check"
"lens-log-len@src/common/lens_reader.c@s/rec->len > SHK_LENS_LOG_MAX ||/rec->len > SHK_LENS_LOG_MAX + 1 ||/@lens lens_corrupt lens_bounds@log length limit moved by one"
"trace-ctrl@tools/trace_json.c@s/} else if (c < 0x20) {/} else if (c < 0x1f) {/@trace_escape lens_trace@control-character escape boundary moved"
"trace-surrogate@tools/trace_json.c@s/(c == 0xED && s\[1\] >= 0xA0)/(c == 0xED \&\& s[1] > 0xA0)/@trace_escape lens_trace@surrogate boundary moved"
"trace-overlong2@tools/trace_json.c@s/c >= 0xC2 && c < 0xE0/c >= 0xC0 \&\& c < 0xE0/@trace_escape lens_trace@two-byte overlong forms accepted"
"fault-prev@src/posix/fault.c@s/  prevs\[i\]\[spare\] = cur;/  (void)cur;/@watch watch_safety watch_free faults_watch@previous signal handler not kept"
"fault-install-rc@src/posix/fault.c@s/  if (POSIX_FAULTABLE(SHK__FAULT_FAULT_HANDLER, -1, sigaction(sig, &sa, NULL)) != 0)/  if (((void)POSIX_FAULTABLE(SHK__FAULT_FAULT_HANDLER, -1, sigaction(sig, \&sa, NULL)), 0))/@watch faults_watch faults_signal@failed sigaction reported as OK"
"fault-install-undo@src/posix/fault.c@s/  if (rc != SHK_OK \&\& segv_changed) undo(SIGSEGV);/  if (rc != SHK_OK \&\& segv_changed \&\& 0) undo(SIGSEGV);/@watch faults_watch faults_signal@half-done handler installation not undone (SIGSEGV's handler lost)"
"buf-alloc-null@src/common/buf.c@s/    if (rc == SHK_OK \&\& !buf->block.ptr) rc = SHK_ENOMEM;.*/    (void)0;/@buf buf_alloc buf_bounds@an allocator that returns nothing is taken as OK"
"buf-align@src/common/buf.c@s/if (opts->alignment \& (opts->alignment - 1)) return/if (0) return/@buf buf_alloc buf_bounds@alignment that is no power of two accepted"
"buf-view-dst@src/common/buf_view.c@s/if (dst_size < n) return SHK_ESIZE;/if (dst_size + 1 < n) return SHK_ESIZE;/@buf buf_view buf_bounds@copy destination one byte short accepted"
"buf-view-count@src/common/buf_view.c@s/if (spec->count == 0) return SHK_ESIZE;/(void)0;/@buf buf_view buf_bounds@view of zero elements not refused as such"
"watch-overlap-end@src/common/watch.c@s/w->regions\[at\]->addr < a + size) rc = SHK_EOVERLAP/w->regions[at]->addr <= a + size) rc = SHK_EOVERLAP/@watch watch_bounds watch_table@a span ending where the next begins is refused"
"lens-string-max@src/common/lens_reader.c@s/rec->len > SHK_LENS_STRING_MAX ||/rec->len > SHK_LENS_STRING_MAX + 1 ||/@lens lens_corrupt lens_bounds@string length limit moved by one"
"task-split-item@src/common/task_chunks.c@s/item_size > 1 \&\& size % item_size != 0/item_size > 2 \&\& size % item_size != 0/@task task_bounds task_edges@size not a multiple of a 2-byte item accepted"
"shm-mappable@src/common/shm.c@s/size == 0 || size > (size_t)PTRDIFF_MAX) return 0;/size == 0) return 0;/@shm shm_bounds@a size past PTRDIFF_MAX goes to the OS"
"trace-4byte@tools/trace_json.c@s/(c == 0xF4 \&\& s\[1\] >= 0x90)/(c == 0xF4 \&\& s[1] > 0x90)/@trace_escape lens_trace@code points past U+10FFFF boundary moved"
"maps-long-line@src/posix/memory.c@s/      int rc = take_line(buf, buf + have, end, \&covered, \&first, prot, uniform);/      int rc = 1;/@faults_memory@maps text reader drops a line longer than its buffer"
"maps-hole@src/posix/memory.c@s/  if (lo > \*covered) return SHK_EFAULT;/  if (lo > *covered \&\& 0) return SHK_EFAULT;/@faults_memory@maps text reader misses a hole"
"summary-mean-order@tools/lens_summary.c@s/return mx < my ? 1 : mx > my ? -1 : 0;/return mx < my ? -1 : mx > my ? 1 : 0;/@tool_lens@summary's mean table in the wrong order"
"tool-escape-ctrl@tools/tool_common.c@s/if (\*s < 0x20 || \*s == 0x7F || n == 0) {/if (*s < 0x1f || *s == 0x7F || n == 0) {/@tool_lens@the tool's text escape boundary moved"
"close-walk-span@src/posix/proc.c@s/if (number \&\& fd >= lo \&\& fd <= hi \&\&/if (number \&\& fd >= lo \&\& fd < hi \&\&/@faults_fds os_proc os_proc_inherit@the descriptor walk leaves the one below a kept one open"
"close-limit-top@src/posix/proc.c@s/for (int fd = lo; fd <= top; fd++) close(fd);/for (int fd = lo; fd < top; fd++) close(fd);/@faults_fds os_proc os_proc_inherit@closing up to the descriptor limit leaves the last one open"
"memfd-fallback-name@src/posix/segment.c@s/^      shm_unlink(name);/      (void)name;/@faults_memfd os_segment@the private name of an anonymous segment without memfd left behind"
"watch-add-restore@src/common/watch_backend_mprotect.c@s/      shk__os_protect((void \*)r->page_start, size, r->prot);/      (void)0;/@watch faults_watch watch_bounds watch_safety@a failed add leaves its pages read-only"
"trace-thread-rename@tools/trace_json.c@s/if (e->thread \&\& (!tr->name || strcmp(tr->name, e->thread) != 0)) {/if (e->thread \&\& !tr->name) {/@trace_escape lens_trace tool_lens@a renamed thread keeps its first name in the trace"
"peek-partial@src/posix/memory.c@s/  if (got == (ssize_t)n) return SHK_OK;/  if (got > 0) return SHK_OK;/@faults_memory task task_workers@a partial safe read taken as whole"
"channel-bad-fd@src/posix/channel.c@s/^    if (fd >= 0) close(fd);/    (void)fd;/@os_channel os_channel_malformed task task_workers@a malformed message's descriptor not closed"
"record-defer@tools/lens_record.c@s/\&\& defer(rec, e, args, nargs)/\&\& 0 \&\& defer(rec, e, args, nargs)/@tool_lens@a zone whose name came late written with a placeholder"
"args-field-check@src/common/lens_reader.c@s/rec->len == 0 \&\& rec->b == 0;/rec->len == 0;/@lens_corrupt lens_args@an argument record's b field not checked"
"args-max@src/common/lens_reader.c@s/if (n == SHK_LENS_ARGS_MAX || n + 1 >= avail) {/if (n > SHK_LENS_ARGS_MAX || n + 1 >= avail) {/@lens_corrupt lens_args@one argument more than an event may have read past the group array"
"args-type-check@src/common/lens_producer.c@s/if (!args\[i\].name || args\[i\].type > SHK_LENS_ARG_TEXT ||/if (!args[i].name || args[i].type > SHK_LENS_ARG_TEXT + 1 ||/@lens_args@an argument of an unknown type sent"
"trace-log-thread@tools/trace_json.c@s/find_arg(args, nargs, \"thread\", SHK_LENS_ARG_UINT)/find_arg(args, nargs, \"thraed\", SHK_LENS_ARG_UINT)/@lens_trace@a log with a thread argument stays on the log track"
# The blind round (docs/coverage.md): planted from the sources before their tests were read.
"task-result-offset@src/common/task.c@s/  if (rec->out_off > seg->size || rec->out_len > seg->size - rec->out_off) return false;/  if (rec->out_len > seg->size - rec->out_off) return false;/@task task_bounds task_workers faults_table@results drop the check of a chunk's output offset from shared memory"
"task-out-write-cap@src/common/task.c@s/if (out->used > cap || size > cap - out->used) return SHK_ELIMIT;/if (out->used > cap || size > cap - out->used + 1) return SHK_ELIMIT;/@task task_bounds task_edges task_workers@a chunk's output may take one byte more than its segment"
"pool-busy-error@src/common/task_pool.c@s/^  SHK__LENS_ZONE_IN(&lens_call, &lens_results, /  if (rc != SHK_OK) return rc;\n&/@task task_bounds task_workers task_edges faults_task faults_table@a failed pool call leaves the pool busy (no unlock on the error path)"
"host-refusal-any@src/common/task_pool.c@s/  if (why == 0 || why == SHK_ENOENT || why == SHK_ENOSYM || why == SHK_EVERSION) return why;/  return why;/@task_host task_host_find faults_table task_workers@a worker host's refusal code from shared memory passed on unchecked"
"task-input-offset@src/common/task_worker.c@s/  if (job->input_offset > m->seg.size || job->input_size > m->seg.size - job->input_offset)/  if (job->input_size > m->seg.size - job->input_offset)/@task task_bounds task_workers faults_table@worker drops the check of the input offset from shared memory"
"shm-find-start@src/common/shm.c@s/start - base < s->seg.size/start - base <= s->seg.size/@shm shm_bounds shm_edges task@a pointer just past a segment's end is found in it"
"seg-open-close@src/posix/segment.c@/^int shk__os_segment_open/,/^}/s/^  close(fd);/  (void)fd;/@shm shm_edges faults_shm os_segment@a failed open by name leaves its descriptor open"
"errno-emfile@src/posix/caps.c@/^    case EMFILE:$/d@shm shm_edges shm_limits faults_shm faults_fds os_segment os_channel error@EMFILE (descriptor limit) becomes SHK_EOS, not SHK_ELIMIT"
"channel-short-record@src/posix/channel.c@s/(size_t)n != sizeof rec || //@os_channel os_channel_malformed task task_workers@a short message taken as a whole record"
"buf-alloc-abandon@src/common/buf.c@/rc = t->alloc(t->user, &req, &buf->block);/,/return rc;/s/object_abandon(buf);/(void)buf;/@buf buf_alloc faults_alloc@a failed allocation keeps its allocator in use"
"buf-consume-refused@src/common/buf.c@s/if (buf->owned && !buf->consumed) t->free/if (buf->owned) t->free/@buf buf_alloc buf_index buf_ranges buf_bounds@refused external memory freed although it stays the caller's"
"buf-release-callback@src/common/buf.c@s/  buf->end_way = opts->delayed_free || opts->on_destroy ? SHK__BUF_END_GENERAL : plain_way;/  buf->end_way = opts->delayed_free ? SHK__BUF_END_GENERAL : plain_way;/@buf buf_recycle buf_deferred buf_alloc@a released buffer with a destroy callback recycled without the callback"
"buf-unregister-busy@src/common/buf_alloc.c@s/memory_order_acquire) > 0) {/memory_order_acquire) > 1) {/@buf buf_alloc@an allocator with one live buffer can be unregistered"
"buf-deferred-count@src/common/buf_deferred.c@s/^  deferred_count--;/  (void)0;/@buf buf_deferred@the deferred count not lowered when a buffer leaves the list"
"watch-readonly@src/common/watch_backend_mprotect.c@s/  if (!shk__watch_region_writable(r)) return SHK_EACCES;/  (void)0;/@watch watch_bounds watch_safety faults_watch watch_table@read-only memory taken by the protection backend"
"watch-enomem-elimit@src/common/watch_backend_mprotect.c@s/      if (rc == SHK_ENOMEM) rc = SHK_ELIMIT;.*/      (void)0;/@watch watch_bounds faults_watch@the kernel's memory-area limit (ENOMEM) not reported as SHK_ELIMIT"
"watch-shared-page@src/common/watch.c@s/if (i > 0 && w->regions\[i - 1\]->page_end > \*start)/if (i > 0 \&\& w->regions[i - 1]->page_end >= *start)/@watch watch_shared_pages watch_bounds watch_table watch_free@a region's first page kept read-only on removal when the previous region ends at that page"
"lens-log-avail@src/common/lens_reader.c@s/rec->len > SHK_LENS_LOG_MAX || data_records(rec->len) >= avail/rec->len > SHK_LENS_LOG_MAX || data_records(rec->len) > avail/@lens lens_corrupt lens_bounds@a log whose text runs one record past the written ones is read"
"lens-strings-scope@src/common/lens_strings.c@s/(slots\[i\].key != key || slots\[i\].scope != scope)/(slots[i].key != key)/@lens lens_procs lens_strings_edges lens_bounds lens_workers lens_names_per_process@two producer processes' names under one key mixed up"
"trace-overlong3@tools/trace_json.c@s/(c == 0xE0 && s\[1\] < 0xA0)/(c == 0xE0 \&\& s[1] < 0x9F)/@trace_escape lens_trace@the three-byte overlong form E0 9F accepted"
"trace-heap-wrap@tools/trace_json.c@s/p->live_heap = e->size > p->live_heap ? 0 : p->live_heap - e->size;/p->live_heap = p->live_heap - e->size;/@trace_escape lens_trace tool_lens@the live-heap counter wraps below zero on a free of unknown memory"
"record-shrunk-exit@tools/lens_record.c@s/  return intact ? 0 : 1;/  return 0;/@tool_lens tool_cli lens_shrink tool_shrink@the recorder exits 0 after the segment shrank under it"
"win32-create-exists@src/win32/segment.c@s/  if (err == ERROR_ALREADY_EXISTS) {/  if (err == ERROR_ALREADY_EXISTS \&\& 0) {/@shm shm_edges faults_shm os_segment@Windows: creating a name that exists opens it instead of SHK_EEXIST"
# The second blind round (docs/coverage.md): planted from the sources (src/, tools/, headers)
# before any test or earlier entry was read. Half in the weak classes of the first round (OS error
# translation, checks of what shared memory or another process hands over), half elsewhere.
"b2-posix-efbig@src/posix/caps.c@/case EFBIG: code = SHK_ESIZE; break;/d@error os_error_codes os_segment faults_shm faults_memory shm shm_limits@errno EFBIG no longer SHK_ESIZE (falls through to SHK_EOS)"
"b2-worker-index@src/common/task_worker.c@0,/ctl->version != SHK__TASK_VERSION || boot->index >= ctl->workers ||/s//ctl->version != SHK__TASK_VERSION ||/@task task_edges task_bounds faults_task faults_table task_workers@a worker serves a slot past the control segment's worker count"
"b2-ext-index@src/common/lens_space.c@s/if (index != k) REFUSE/if (0) REFUSE/@lens lens_grow lens_grow_hostile lens_grow_threads lens_corrupt@an extension that names another index is accepted"
"b2-lens-string-len@src/common/lens_reader.c@s/if (rec->len > SHK_LENS_STRING_MAX || data_records(rec->len) >= avail) {/if (data_records(rec->len) >= avail) {/@lens lens_corrupt lens_bounds lens_strings_edges lens_api_edges@a string record longer than SHK_LENS_STRING_MAX is copied"
"b2-watch-ring-limit@src/common/watch_ring.c@s/>= ring->limit)/> ring->limit)/@watch_ring watch watch_bounds@the fault ring takes one record more than its capacity"
"b2-options-newer-fields@src/common/options.c@s/    if (bytes\[i\]) return SHK_EINVAL;/    (void)bytes[i];/@options options_rule options_init_functions@non-zero fields past what the library knows are ignored, not refused"
"b2-options-min-size@src/common/options.c@s/if (field < l->min_size || field > SHK_OPTIONS_SIZE_MAX) return 0;/if (field > SHK_OPTIONS_SIZE_MAX) return 0;/@options options_rule options_init_functions@a struct_size below the first published layout is read, not refused"
"b2-view-last-elem@src/common/buf_view.c@s/if (spec->offset + last + elem > buf->size)/if (spec->offset + last > buf->size)/@buf_view buf buf_bounds@a view whose last element passes the buffer's end is made"
"b2-deferred-count@src/common/buf_deferred.c@s/\*count = deferred_count;/*count = i;/@buf_deferred buf@shk_buf_deferred_list's count is what fit, not the total"
"b2-tool-shm-unknown@tools/shm_names.c@s/^  return 2;/  return 0;/@tool_cli@shmkit shm with an unknown command exits 0"
"b2-tool-seconds-trailing@tools/tool_common.c@s/ || \*end != '.0' ||/ ||/@tool_cli tool_lens@a duration with trailing text (5x) is accepted"
"b2-clean-name-dash@src/common/shm_names.c@s/if (p == name + n || \*p != '-' || v <= 0/if (p == name + n || v <= 0/@shm_names shm_names_edges tool_cli@a name like shkb-123x counts as generated (clean may remove it)"
"b2-host-major@src/common/task_transport.c@s/if (!major || value != SHK_VERSION_MAJOR) return SHK_EVERSION;/if (!major) return SHK_EVERSION;/@task_host task_host_find@a plugin of another major version is loaded"
"b2-pool-timeout-unit@src/common/task_pool.c@0,/(uint64_t)call->timeout_ms \* 1000000u/s//(uint64_t)call->timeout_ms * 1000u/@task task_edges task_bounds task_deadline task_workers faults_task@the pool's deadline counts timeout_ms as microseconds"
# Six of the twenty above turned out to repeat earlier entries (the same line, the same bug:
# task-chunk-size, task-result-offset, host-refusal-any, seg-open-empty, seg-size-cleanup,
# buf-consume-refused) and were dropped; these six replace them, planted after reading the
# earlier entries and tests/test_faults_table.c but not the tests of their own areas.
"b2r-ext-need@src/common/lens_space.c@s/uint64_t need = SHK_LENS_EXT_HEADER_SIZE + (uint64_t)count \* stride;/uint64_t need = SHK_LENS_EXT_HEADER_SIZE + (uint64_t)(count - 1) * stride;/@lens lens_grow lens_grow_hostile lens_grow_threads lens_corrupt lens_api_edges@an extension segment one ring too short for its rings is accepted"
"b2r-ring-pow2@src/common/lens_layout.c@s/      records > (1u << 21) || (records & (records - 1)) != 0 ||/      records > (1u << 21) ||/@lens lens_corrupt lens_layout_edges lens_api_edges lens_bounds tool_lens@a lens header whose ring size is not a power of two is accepted"
"b2r-channel-epipe@src/posix/channel.c@s/if (n < 0) return errno == EPIPE || errno == ECONNRESET ?/if (n < 0) return errno == ECONNRESET ?/@os_channel os_channel_malformed task faults_task faults_table@a notify to a channel whose peer is gone (EPIPE) is SHK_EOS, not SHK_ENOENT"
"b2r-channel-handle@src/posix/channel.c@s/^      (rec.kind == SHK__OS_MSG_HANDLE) != (fd >= 0)) {/      0) {/@os_channel os_channel_malformed task faults_task faults_table@a handle message that carries no descriptor is taken (as handle 0)"
"b2r-pool-replace@src/common/task_pool.c@s/    if (!pool->alive\[i\]) return start_missing(pool, false);/    if (!pool->alive[i]) return SHK_OK;/@task task_edges task_workers faults_task task_host@a pool does not replace a worker that died"
"b2r-deferred-unknown@src/common/buf_deferred.c@s/  if (!b) return SHK_ENOENT;/  if (!b) return SHK_OK;/@buf_deferred buf@shk_buf_free_deferred of an id that is not deferred returns SHK_OK"
# the range index by block records (bitmaps of 512-byte blocks; session 10 replaced session 7's
# entries for records of pieces of 128-byte blocks: the same kinds of bug, planted in the new code)
"idx-pair-second@src/common/buf_granules.h@s/  return ((a->word\[p.w0\] \& p.m0) | (b->word\[p.w1\] \& p.m1)) != 0;/  return (a->word[p.w0] \& p.m0) != 0;/@buf_index buf_overlap_model buf@block records (bitmaps): a small piece's second word is not compared"
"idx-pair-top@src/common/buf_granules.h@s/  p.m1 = top \& two;/  p.m1 = top \& two \& (top >> 1);/@buf_index buf_overlap_model buf@a piece in two words loses its last byte"
"idx-piece-last@src/common/buf_ranges_short.h@s/  \*last = end - 1 - (\*g << SHK__GRANULE_BITS);/  *last = end - 2 - (*g << SHK__GRANULE_BITS);/@buf_index buf_overlap_model buf@the short way keeps a small range one byte short"
"idx-tail@src/common/buf_ranges.c@s/  p.tail = p.ge != p.gs \&\& p.ge >= p.whole_to;/  p.tail = p.ge != p.gs \&\& p.ge > p.whole_to;/@buf_index buf_overlap_model buf@a range's piece in its last block is dropped"
"idx-long-words@src/common/buf_granules.h@s/    if (m->word\[w\] \& shk__granule_word_mask(w, lo, last)) return true;/    if (w == lo \/ 64 \&\& (m->word[w] \& shk__granule_word_mask(w, lo, last))) return true;/@buf_index buf_overlap_model buf@a long piece is compared in its first word only"
"idx-whole-drop@src/common/buf_ranges.c@s/    if (r \&\& shk__granule_live(r)) return SHK_EOVERLAP;/    if (r \&\& !r->key) return SHK_EOVERLAP;/@buf_index buf_overlap_model buf@whole blocks drop a block that still holds pieces"
"idx-shift-wrap@src/common/buf_granules.c@s/    bool stays = gap <= i ? (gap < home \&\& home <= i) : (gap < home || home <= i);/    bool stays = gap < home \&\& home <= i;/@buf_index buf_overlap_model buf@a record's deletion ignores the table's wrap"
"idx-last-block@src/common/buf_ranges.c@s/  if (node->end > UINTPTR_MAX - (SHK__GRANULE_SIZE - 1)) return SHK_EOVERFLOW;/  (void)0;/@buf_index buf_consume_kept buf@the last block of the address space is reserved with an end of 0"
"idx-spread-next@src/common/buf_range_tree.c@s/  if (ch->n \&\& ch->start\[2 \* ch->n - 1\] > next) ch->start\[2 \* ch->n - 1\] = next;/  (void)next;/@buf_index buf_overlap_model buf@a spread chunk's last dead start passes the next chunk's first"
"idx-empty-scan@src/common/buf_granules.c@s/    empty += shk__granule_table\[i\].key \&\& !shk__granule_live(\&shk__granule_table\[i\]);/    empty += 0;/@buf_index buf_overlap_model buf@emptied records are not counted by the scan (a freed arena's records stay)"
"idx-empty-now@src/common/buf_ranges.c@s/  if (!shk__granule_has_room(4) || shk__granule_used > 4 \* shk__buf_ranges_live + 1024 ||/  if (!shk__granule_has_room(4) ||/@buf_index buf_overlap_model buf@with few ranges live, emptied records wait for the scan (not dropped at the next new record)"
"idx-walk-once@src/common/buf_ranges.c@s/  if (node->head_piece != SHK__GRANULE_NONE || node->tail_piece != SHK__GRANULE_NONE) return;/  if (node->head_piece != SHK__GRANULE_NONE) return;/@buf_index buf_overlap_model watch_buffers buf@the walk calls a range with whole blocks and a last piece twice"
"idx-unlink@src/common/buf_ranges_short.h@s/^  shk__buf_ranges_unlink(node);/  (void)0;/@buf_index buf_overlap_model watch_buffers buf@a removed range stays on the list of ranges with pieces"
"idx-check-bits@src/common/buf_ranges.c@s/  if (bytes != bits) {/  if (0) {/@buf_index@SHK_DEBUG=buf's check does not compare the bits set with the listed pieces' bytes"
# the slot hints of a remove and the short ways' record lookups (issue 15, consume+release)
"idx-hint-key@src/common/buf_granules.h@s/  if (slot <= shk__granule_mask \&\& t\[slot\].key == key) return slot;/  if (slot <= shk__granule_mask \&\& t[slot].key != 0) return slot;/@buf_index buf_overlap_model buf@a remove takes the record in its hinted slot without comparing the key there (any record)"
"idx-hint-fallback@src/common/buf_granules.h@s/^  return shk__granule_find_slot(key);/  return SHK__GRANULE_NOT_FOUND;/@buf_index buf_overlap_model buf@a remove whose hint is stale does not look for its record"
"idx-pair-note@src/common/buf_ranges_short.h@s/  node->head_m1 = p.m1;/  node->head_m1 = 0;/@buf_index buf_overlap_model buf@a range's noted second word is lost (its remove leaves bits set)"
"idx-across-word@src/common/buf_granules.h@s/  shk__granule_pair p = {SHK__GRANULE_WORDS - 1, 0,/  shk__granule_pair p = {SHK__GRANULE_WORDS - 1, 1,/@buf_index buf_overlap_model buf@a pair across two blocks puts its second word in the next block's word 1"
"idx-across-take@src/common/buf_granules.h@s/  b->word\[p.w1\] \&= ~p.m1;/  (void)b;/@buf_index buf_overlap_model buf@a pair's remove leaves its second word's bits set"
"slab-walk-skips@src/common/buf.c@s/  if (node->slab) {/  if (node->slab) { return;/@buf_slab@the walk of live buffers skips every slab (its live slots are not listed)"
"slab-not-indexed@src/common/buf_slab.c@s/  if (shk__buf_ranges_insert(\&s->range) != SHK_OK) {/  if (0) {/@buf_slab@a new slab is not put in the range index (a consume into its memory is accepted)"
"slab-drop-current@src/common/buf_internal.h@s/    if (--s->used == 0 \&\& t->slabs\[s->k\] != s) shk__buf_slab_drop(t, s);/    if (--s->used == 0) shk__buf_slab_drop(t, s);/@buf_slab@a thread's current slab goes back when its last slot does (the next create takes a slot of freed memory)"
# The Windows side of the translation table (a build/mingw run under wine; not-built natively).
"b2r-win32-busy@src/win32/caps.c@/case ERROR_BUSY: code = SHK_EBUSY; break;/d@os_error_codes@GetLastError ERROR_BUSY no longer SHK_EBUSY (falls through to SHK_EOS)"
)

restore=""
cleanup() { [ -n "$restore" ] && cp "$restore.orig" "$restore" && rm -f "$restore.orig"; restore=""; }
trap 'cleanup; exit 130' INT TERM
trap cleanup EXIT

caught=0 missed=0 total=0
printf '%-20s %-12s %s\n' mutation result what
for m in "${mutations[@]}"; do
  IFS='@' read -r id file script tests what <<<"$m"
  [ "$only" != "  " ] && [[ $only != *" $id "* ]] && continue
  path=$root/$file
  # A file this build does not compile (src/win32 in a native build, src/posix in a mingw one):
  # no test of this build can catch it; run it with the other build folder. A header is compiled
  # through the sources that include it (the build's dependency files rebuild them).
  if [[ $file != *.h ]] && ! grep -qF "$file" "$build/build.ninja"; then
    printf '%-20s %-12s %s\n' "$id" not-built "$what"; continue
  fi
  cp "$path" "$path.orig"; restore=$path
  sed -i "$script" "$path"
  if cmp -s "$path" "$path.orig"; then
    cleanup; printf '%-20s %-12s %s\n' "$id" not-applied "$what"; continue
  fi
  targets=() regex=""
  for t in $tests; do
    targets+=("test_$t"); regex+="${regex:+|}^$t\$"
  done
  # The tool's tests need the tool; the worker host is needed by the task tests.
  for extra in shmkit_tool shmkit_worker; do
    ninja -C "$build" -t query "$extra" >/dev/null 2>&1 && targets+=("$extra")
  done
  # SHK_MUTATE_ALL=1: the whole native suite instead of the area's tests (what an outside
  # measurement runs; slower).
  if [ "${SHK_MUTATE_ALL:-0}" = 1 ]; then targets=(all) regex=.; fi
  total=$((total + 1))
  if ! cmake --build "$build" -j "$jobs" --target "${targets[@]}" >"$logs/$id.build.log" 2>&1; then
    # A mutation that does not compile is no test of the tests: reported apart, not counted.
    cleanup; total=$((total - 1)); printf '%-20s %-12s %s\n' "$id" build-failed "$what"; continue
  fi
  if timeout "$limit" ctest --test-dir "$build" -R "$regex" --output-on-failure --timeout "$limit" \
       >"$logs/$id.test.log" 2>&1; then
    missed=$((missed + 1)); r=MISSED
  else
    caught=$((caught + 1)); r=caught
  fi
  cleanup
  printf '%-20s %-12s %s\n' "$id" "$r" "$what"
done
# Leave the build as the sources are.
if [ "$total" -gt 0 ]; then cmake --build "$build" -j "$jobs" >"$logs/rebuild.log" 2>&1 || echo "rebuild failed: $logs/rebuild.log"; fi
[ "$total" -gt 0 ] && echo "caught $caught of $total ($((100 * caught / total))%), missed $missed"
