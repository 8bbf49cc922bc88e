/* Readiness on Node's own event loop: a uv_poll watch per fd that calls one JS function
 * with the ready events. JS then drains the fd with one batched call per wakeup. */
#include <stdlib.h>
#include <uv.h>
#include "addon.h"

typedef struct {
  uv_poll_t handle;
  napi_env env;
  napi_ref callback;
  napi_ref receiver; /* napi_make_callback silently does nothing with an undefined receiver */
  napi_async_context context;
  int stopped;   /* pollStop was called: no more callbacks */
  int closed;    /* libuv has released the handle */
  int finalized; /* JS no longer holds the external */
} watch_t;

static int to_uv(int32_t events) {
  return ((events & POLL_READABLE) ? UV_READABLE : 0) | ((events & POLL_WRITABLE) ? UV_WRITABLE : 0);
}

static void on_ready(uv_poll_t *handle, int status, int events) {
  watch_t *w = handle->data;
  if (w->stopped) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[2], result;
  napi_get_reference_value(env, w->callback, &cb);
  napi_get_reference_value(env, w->receiver, &recv);
  int32_t ev = ((events & UV_READABLE) ? POLL_READABLE : 0) | ((events & UV_WRITABLE) ? POLL_WRITABLE : 0);
  napi_create_int32(env, status < 0 ? -1 : 0, &argv[0]);
  napi_create_int32(env, status < 0 ? (POLL_READABLE | POLL_WRITABLE) : ev, &argv[1]);
  if (napi_make_callback(env, w->context, recv, cb, 2, argv, &result) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err); /* surfaces as 'uncaughtException', as for any JS callback */
  }
  napi_close_handle_scope(env, scope);
}

/* The watch is freed once both libuv and JS are done with it, in either order. */
static void on_closed(uv_handle_t *handle) {
  watch_t *w = handle->data;
  w->closed = 1;
  if (w->finalized) free(w);
}

static void on_finalize(napi_env env, void *data, void *hint) {
  watch_t *w = data;
  w->finalized = 1;
  if (w->closed) {
    free(w);
  } else if (!w->stopped) { /* dropped without pollStop: stop it so libuv lets go */
    w->stopped = 1;
    uv_poll_stop(&w->handle);
    uv_close((uv_handle_t *)&w->handle, on_closed);
  }
}

/* pollStart(fd, events, callback(status, events)) -> handle */
napi_value poll_start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], handle, resource_name, receiver;
  int32_t fd, events;
  napi_valuetype t;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || !arg_int32(env, argv[0], &fd) || !arg_int32(env, argv[1], &events) ||
      napi_typeof(env, argv[2], &t) != napi_ok || t != napi_function)
    return throw_errno(env, EINVAL, "pollStart(fd, events, callback)");

  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  watch_t *w = calloc(1, sizeof *w);
  if (!w) return throw_errno(env, ENOMEM, "pollStart");
  w->env = env;
  int rc = uv_poll_init(loop, &w->handle, fd);
  if (rc < 0) {
    free(w);
    return throw_errno(env, -rc, "uv_poll_init");
  }
  w->handle.data = w;
  CHECK(napi_create_object(env, &receiver));
  CHECK(napi_create_reference(env, argv[2], 1, &w->callback));
  CHECK(napi_create_reference(env, receiver, 1, &w->receiver));
  CHECK(napi_create_string_utf8(env, "udptun.poll", NAPI_AUTO_LENGTH, &resource_name));
  CHECK(napi_async_init(env, receiver, resource_name, &w->context));
  rc = uv_poll_start(&w->handle, to_uv(events), on_ready);
  if (rc < 0) {
    w->stopped = w->finalized = 1;
    uv_close((uv_handle_t *)&w->handle, on_closed);
    return throw_errno(env, -rc, "uv_poll_start");
  }
  CHECK(napi_create_external(env, w, on_finalize, NULL, &handle));
  return handle;
}

static watch_t *arg_watch(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  watch_t *w = p;
  return w->stopped ? NULL : w;
}

/* pollSet(handle, events): change the watched events; 0 pauses the watch (back-pressure). */
napi_value poll_set(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t events;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  watch_t *w = argc >= 2 ? arg_watch(env, argv[0]) : NULL;
  if (!w || !arg_int32(env, argv[1], &events)) return throw_errno(env, EINVAL, "pollSet(handle, events)");
  int rc = events ? uv_poll_start(&w->handle, to_uv(events), on_ready) : uv_poll_stop(&w->handle);
  if (rc < 0) return throw_errno(env, -rc, "pollSet");
  return NULL;
}

/* pollStop(handle): stop and free the watch; the fd itself stays open. */
napi_value poll_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  watch_t *w = argc >= 1 ? arg_watch(env, argv[0]) : NULL;
  if (!w) return NULL; /* stopping twice is harmless */
  w->stopped = 1;
  uv_poll_stop(&w->handle);
  napi_async_destroy(env, w->context);
  napi_delete_reference(env, w->callback);
  napi_delete_reference(env, w->receiver);
  uv_close((uv_handle_t *)&w->handle, on_closed);
  return NULL;
}
