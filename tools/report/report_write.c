/* tool_report_write: check the trace (first pass), then write the viewer with the trace inside
 * (second pass), so that a bad trace never leaves a half-written report behind. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "report_json.h"
#include "shmkit.h"

#define CHUNK 65536

void tool_report_options_init(tool_report_options *o) {
  memset(o, 0, sizeof *o);
  o->messages = stderr;
  o->max_bytes = TOOL_REPORT_MAX_BYTES;
}

static void say(const tool_report_options *o, const char *format, ...) {
  if (!o->messages) return;
  va_list ap;
  va_start(ap, format);
  fputs("shmkit: ", o->messages);
  vfprintf(o->messages, format, ap);
  fputc('\n', o->messages);
  va_end(ap);
}

static int open_failed(const tool_report_options *o, const char *path, const char *what) {
  int err = errno;
  say(o, "cannot %s %s: %s", what, path, strerror(err));
  return err == ENOENT && strcmp(what, "open") == 0 ? SHK_ENOENT : SHK_EOS;
}

/* First pass: is it a trace, and how large. */
static int check_trace(FILE *in, const char *path, const tool_report_options *o, report_check *c) {
  unsigned char *buf = malloc(CHUNK);
  if (!buf) return SHK_ENOMEM;
  report_check_init(c);
  bool ok = true;
  size_t n;
  while (ok && (n = fread(buf, 1, CHUNK, in)) > 0) {
    if (c->offset + n > o->max_bytes) {
      free(buf);
      say(o, "%s is larger than %llu MiB, more than a browser page holds as one string; cut the "
             "recording shorter", path, (unsigned long long)(o->max_bytes >> 20));
      return SHK_ELIMIT;
    }
    ok = report_check_feed(c, buf, n);
  }
  free(buf);
  if (ok && ferror(in)) return open_failed(o, path, "read");
  if (ok) ok = report_check_finish(c);
  if (!ok) {
    say(o, "%s:%llu:%llu: %s (a report needs a Chrome trace: a JSON array of events, or an object "
           "with a \"traceEvents\" array)", path, (unsigned long long)c->line,
        (unsigned long long)c->column, c->error);
    return SHK_EFORMAT;
  }
  return SHK_OK;
}

typedef struct out_file {
  FILE *f;
  size_t used;
  bool failed;
  unsigned char buf[CHUNK];
} out_file;

static bool out_put(const void *bytes, size_t n, void *user) {
  out_file *o = user;
  if (o->failed) return false;
  if (o->used + n > sizeof o->buf) {
    if (o->used && fwrite(o->buf, 1, o->used, o->f) != o->used) o->failed = true;
    o->used = 0;
    if (n >= sizeof o->buf) {
      if (!o->failed && fwrite(bytes, 1, n, o->f) != n) o->failed = true;
      return !o->failed;
    }
  }
  memcpy(o->buf + o->used, bytes, n);
  o->used += n;
  return !o->failed;
}

static bool out_text(out_file *o, const char *s) { return out_put(s, strlen(s), o); }

/* A JSON string for the page's own data (title, file name): escaped like the trace's strings. */
static bool out_json_string(out_file *o, const char *s) {
  report_escape e;
  report_escape_init(&e);
  bool ok = out_text(o, "\"");
  for (const unsigned char *p = (const unsigned char *)s; ok && *p; p++) {
    char esc[8];
    /* A sequence cut short by this byte gets its U+FFFD first: finish before escaping. */
    bool special = *p == '"' || *p == '\\' || *p < 0x20;
    if (special && !report_escape_finish(&e, out_put, o)) return false;
    if (*p == '"' || *p == '\\') {
      esc[0] = '\\';
      esc[1] = (char)*p;
      ok = out_put(esc, 2, o);
    } else if (*p < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", *p);
      ok = out_text(o, esc);
    } else {
      ok = report_escape_feed(&e, p, 1, out_put, o);
    }
  }
  return ok && report_escape_finish(&e, out_put, o) && out_text(o, "\"");
}

static const char *base_name(const char *path) {
  const char *name = path;
  for (const char *p = path; *p; p++)
    if (*p == '/' || *p == '\\') name = p + 1;
  return name;
}

static bool write_meta(out_file *out, const char *json_path, const tool_report_options *o,
                       const report_check *c) {
  char numbers[160];
  snprintf(numbers, sizeof numbers, ",\"bytes\":%llu,\"events\":%llu,\"generator\":",
           (unsigned long long)c->offset, (unsigned long long)c->events);
  char generator[64];
  snprintf(generator, sizeof generator, "shmkit %s lens report", shk_version_string());
  return out_text(out, "<script type=\"application/json\" id=\"shk-meta\">{\"title\":") &&
         out_json_string(out, o->title ? o->title : base_name(json_path)) &&
         out_text(out, ",\"source\":") && out_json_string(out, base_name(json_path)) &&
         out_text(out, numbers) && out_json_string(out, generator) &&
         out_text(out, "}</script>\n<script type=\"application/json\" id=\"shk-trace\">");
}

/* Second pass: the trace, escaped, with a missing ']' supplied. */
static bool write_trace(out_file *out, FILE *in, const report_check *c, report_escape *e) {
  unsigned char *buf = malloc(CHUNK);
  if (!buf) return false;
  uint64_t at = 0;
  bool ok = true;
  size_t n;
  while (ok && at < c->offset && (n = fread(buf, 1, CHUNK, in)) > 0) {
    if (n > c->offset - at) n = (size_t)(c->offset - at); /* the file grew: what was checked */
    if (c->cut_at >= at && c->cut_at < at + n) {
      size_t cut = (size_t)(c->cut_at - at); /* the trailing ',' of an unclosed array */
      ok = report_escape_feed(e, buf, cut, out_put, out) &&
           report_escape_feed(e, buf + cut + 1, n - cut - 1, out_put, out);
    } else {
      ok = report_escape_feed(e, buf, n, out_put, out);
    }
    at += n;
  }
  free(buf);
  /* A file that shrank between the passes would leave the JSON cut short. */
  ok = ok && at == c->offset && report_escape_finish(e, out_put, out);
  if (ok && c->unclosed) ok = out_text(out, "]");
  return ok;
}

static int write_report(FILE *in, const char *json_path, const char *html_path,
                        const tool_report_options *o, const report_check *c, report_escape *e) {
  out_file *out = calloc(1, sizeof *out);
  if (!out) return SHK_ENOMEM;
  out->f = fopen(html_path, "wb");
  if (!out->f) {
    free(out);
    return open_failed(o, html_path, "create");
  }
  bool ok = out_put(tool_report_head, tool_report_head_size, out) &&
            write_meta(out, json_path, o, c) && write_trace(out, in, c, e) &&
            out_text(out, "</script>\n") && out_put(tool_report_tail, tool_report_tail_size, out);
  if (ok && out->used && fwrite(out->buf, 1, out->used, out->f) != out->used) ok = false;
  int saved = errno;
  bool read_failed = ferror(in) != 0;
  if (fclose(out->f) != 0) ok = false;
  free(out);
  if (ok) return SHK_OK;
  remove(html_path);
  if (read_failed) {
    say(o, "reading %s failed the second time: %s", json_path, strerror(saved));
  } else {
    say(o, "writing %s failed: %s", html_path, saved ? strerror(saved) : "the trace changed while it was read");
  }
  return SHK_EOS;
}

static void summary(const tool_report_options *o, const char *html_path, const report_check *c,
                    const report_escape *e) {
  if (o->quiet || !o->messages) return;
  if (e->replaced)
    fprintf(o->messages, "shmkit: warning: %llu byte sequences in strings were not UTF-8; the "
                         "report shows them as U+FFFD\n", (unsigned long long)e->replaced);
  if (c->unclosed)
    fprintf(o->messages, "shmkit: note: the event array had no closing ']' (a recording that "
                         "stopped early); the report closes it\n");
  fprintf(o->messages, "report written to %s (%llu events, %.1f MB of trace)\n", html_path,
          (unsigned long long)c->events, (double)c->offset / 1e6);
}

int tool_report_write(const char *json_path, const char *html_path,
                      const tool_report_options *options, tool_report_info *info) {
  tool_report_options defaults;
  tool_report_options_init(&defaults);
  const tool_report_options *o = options ? options : &defaults;
  if (!json_path || !html_path) return SHK_EINVAL;
  if (strcmp(json_path, html_path) == 0) {
    say(o, "the report would overwrite its own trace (%s): choose another -o", json_path);
    return SHK_EINVAL;
  }
  tool_report_options limited = *o;
  if (limited.max_bytes == 0) limited.max_bytes = TOOL_REPORT_MAX_BYTES;
  o = &limited;

  FILE *in = fopen(json_path, "rb");
  if (!in) return open_failed(o, json_path, "open");
  report_check *c = malloc(sizeof *c);
  report_escape e;
  report_escape_init(&e);
  int rc = c ? check_trace(in, json_path, o, c) : SHK_ENOMEM;
  if (rc == SHK_OK && fseek(in, 0, SEEK_SET) != 0) rc = open_failed(o, json_path, "reread");
  if (rc == SHK_OK) rc = write_report(in, json_path, html_path, o, c, &e);
  fclose(in);
  if (rc == SHK_ENOMEM) say(o, "out of memory");
  if (rc == SHK_OK) {
    summary(o, html_path, c, &e);
    if (info) {
      info->bytes = c->offset;
      info->events = c->events;
      info->replaced = e.replaced;
      info->unclosed = c->unclosed;
    }
  }
  free(c);
  return rc;
}
