/* Checks the anti-replay window (src/native/wg-replay.c) and the send counter's limit
 * (wg_take_counters, src/native/wg-protocol.h). The first table is wireguard-go's
 * replay/replay_test.go (itself the Linux kernel's), ported as data; the edges after it
 * are ours. Prints one line and exits non-zero on the first failure. */
#include <stdio.h>
#include "../../src/native/wg-protocol.h"
#include "../../src/native/wg-replay.h"

#define LIM ((uint64_t)REPLAY_WINDOW + 1)
#define REJECT WG_REJECT_AFTER_MESSAGES

typedef struct {
  uint64_t counter;
  int accepted;
} step_t;

static const step_t kernel_steps[] = {
    {0, 1},                       {1, 1},           {1, 0},           {9, 1},
    {8, 1},                       {7, 1},           {7, 0},           {LIM, 1},
    {LIM - 1, 1},                 {LIM - 1, 0},     {LIM - 2, 1},     {2, 1},
    {2, 0},                       {LIM + 16, 1},    {3, 0},           {LIM + 16, 0},
    {LIM * 4, 1},                 {LIM * 4 - (LIM - 1), 1},           {10, 0},
    {LIM * 4 - LIM, 0},           {LIM * 4 - (LIM + 1), 0},           {LIM * 4 - (LIM - 2), 1},
    {LIM * 4 + 1 - LIM, 0},       {0, 0},           {REJECT, 0},      {REJECT - 1, 1},
    {REJECT, 0},                  {REJECT - 1, 0},  {REJECT - 2, 1},  {REJECT + 1, 0},
    {REJECT + 2, 0},              {REJECT - 2, 0},  {REJECT - 3, 1},  {0, 0},
};

static long checks;
static const char *section;

static int expect(replay_t *w, uint64_t counter, int want, int step) {
  int check = replay_check(w, counter);
  int got = replay_mark(w, counter);
  checks++;
  if (got == want && check == want) return 1;
  printf("%s, step %d: counter %llu: check %d, mark %d, want %d\n", section, step, (unsigned long long)counter, check, got, want);
  return 0;
}

/* Marks first, first+dir, ... (n counters), each expected new. */
static int run(replay_t *w, uint64_t first, int64_t dir, uint64_t n) {
  for (uint64_t k = 0; k < n; k++)
    if (!expect(w, first + (uint64_t)dir * k, 1, (int)k)) return 0;
  return 1;
}

static int replay_tests(void) {
  replay_t w;
  replay_reset(&w);
  section = "kernel sequence";
  for (size_t i = 0; i < sizeof kernel_steps / sizeof kernel_steps[0]; i++)
    if (!expect(&w, kernel_steps[i].counter, kernel_steps[i].accepted, (int)i + 1)) return 0;

  /* wireguard-go's bulk tests: a full window in either direction, then its far edge. */
  section = "bulk 1";
  replay_reset(&w);
  if (!run(&w, 1, 1, REPLAY_WINDOW) || !expect(&w, 0, 1, 0) || !expect(&w, 0, 0, 1)) return 0;
  section = "bulk 2";
  replay_reset(&w);
  if (!run(&w, 2, 1, REPLAY_WINDOW) || !expect(&w, 1, 1, 0) || !expect(&w, 0, 0, 1)) return 0;
  section = "bulk 3";
  replay_reset(&w);
  if (!run(&w, REPLAY_WINDOW + 1, -1, REPLAY_WINDOW + 1)) return 0;
  section = "bulk 4";
  replay_reset(&w);
  if (!run(&w, REPLAY_WINDOW + 2, -1, REPLAY_WINDOW + 1) || !expect(&w, 0, 0, 0)) return 0;
  section = "bulk 5";
  replay_reset(&w);
  if (!run(&w, REPLAY_WINDOW, -1, REPLAY_WINDOW) || !expect(&w, REPLAY_WINDOW + 1, 1, 0) || !expect(&w, 0, 0, 1))
    return 0;
  section = "bulk 6";
  replay_reset(&w);
  if (!run(&w, REPLAY_WINDOW, -1, REPLAY_WINDOW) || !expect(&w, 0, 1, 0) || !expect(&w, REPLAY_WINDOW + 1, 1, 1))
    return 0;

  /* The window's edges, from every position of the newest counter inside a block. */
  section = "edges";
  if (REPLAY_WINDOW != 8128) {
    printf("edges: the window holds %d counters, want 8128\n", REPLAY_WINDOW);
    return 0;
  }
  for (uint64_t newest = 100000; newest < 100000 + 2 * REPLAY_BLOCK_BITS; newest++) {
    replay_reset(&w);
    if (!expect(&w, newest, 1, 0) || !expect(&w, newest - 8128, 1, 1) || !expect(&w, newest - 8128, 0, 2) ||
        !expect(&w, newest - 8129, 0, 3) || !expect(&w, newest - 1, 1, 4) || !expect(&w, newest, 0, 5))
      return 0;
  }
  section = "counter 0";
  replay_reset(&w);
  if (!expect(&w, 0, 1, 0) || !expect(&w, 0, 0, 1) || !expect(&w, 8128, 1, 2) || !expect(&w, 0, 0, 3)) return 0;
  replay_reset(&w);
  if (!expect(&w, 8129, 1, 0) || !expect(&w, 0, 0, 1) || !expect(&w, 1, 1, 2)) return 0;

  /* A jump far ahead forgets everything behind the new window, and old bits never
   * resurface where the ring wraps onto them. */
  section = "jump";
  replay_reset(&w);
  if (!run(&w, 0, 1, 300)) return 0;
  uint64_t far = UINT64_C(1) << 40;
  if (!expect(&w, far, 1, 0) || !expect(&w, 299, 0, 1) || !expect(&w, far - 8128, 1, 2) || !expect(&w, far - 8129, 0, 3))
    return 0;
  for (uint64_t c = far + 1; c < far + 300; c++)
    if (!expect(&w, c, 1, (int)(c - far))) return 0;
  replay_reset(&w);
  if (!expect(&w, 5, 1, 0) || !expect(&w, 5 + 128 * 64, 1, 1) || !expect(&w, 5 + 127 * 64, 1, 2) ||
      !expect(&w, 5 + 2 * 128 * 64, 1, 3) || !expect(&w, 5 + 128 * 64 + 64, 1, 4))
    return 0;

  section = "reject after messages";
  replay_reset(&w);
  if (!expect(&w, REJECT, 0, 0) || !expect(&w, UINT64_MAX, 0, 1) || !expect(&w, REJECT - 1, 1, 2) ||
      !expect(&w, REJECT - 1, 0, 3) || !expect(&w, REJECT - 1 - 8128, 1, 4) || !expect(&w, REJECT - 1 - 8129, 0, 5))
    return 0;
  return 1;
}

static int take(_Atomic uint64_t *next, uint64_t n, int want_ok, uint64_t want_first, uint64_t want_next, int step) {
  uint64_t first = 12345;
  int ok = wg_take_counters(next, n, &first);
  checks++;
  uint64_t now = atomic_load(next);
  if (ok == want_ok && (!ok || first == want_first) && now == want_next) return 1;
  printf("send counter, step %d: take %llu: ok %d first %llu next %llu\n", step, (unsigned long long)n, ok,
         (unsigned long long)first, (unsigned long long)now);
  return 0;
}

static int counter_tests(void) {
  _Atomic uint64_t next = 0;
  if (!take(&next, 1, 1, 0, 1, 1) || !take(&next, 45, 1, 1, 46, 2)) return 0;
  atomic_store(&next, REJECT - 3);
  /* The last counter handed out is REJECT - 1; REJECT itself never is. */
  if (!take(&next, 1, 1, REJECT - 3, REJECT - 2, 3) || !take(&next, 3, 0, 0, REJECT - 2, 4) ||
      !take(&next, 2, 1, REJECT - 2, REJECT, 5) || !take(&next, 1, 0, 0, REJECT, 6) ||
      !take(&next, 65535, 0, 0, REJECT, 7) || !take(&next, UINT64_MAX, 0, 0, REJECT, 8))
    return 0;
  atomic_store(&next, 10);
  /* A request that would wrap past 2^64 is refused without moving the counter. */
  return take(&next, UINT64_MAX - 5, 0, 0, 10, 9);
}

int main(void) {
  if (!replay_tests() || !counter_tests()) return 1;
  printf("wg replay ok: %ld checks\n", checks);
  return 0;
}
