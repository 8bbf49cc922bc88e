/* What the native test programs share: one line per case, "ok NAME" or "not ok NAME: why",
 * and a last line "done N cases, F failed" (read by test/unit/lib/native-program.ts); and a
 * plain RFC 1071 sum, written apart from src/native/csum.h so that it can judge it. */
#ifndef UDPTUN_TEST_CHECK_H
#define UDPTUN_TEST_CHECK_H

#include <stdint.h>
#include <stdio.h>

static int cases_run, cases_failed;
static char why[512];

/* Inside a case (a function returning int): fail it with a reason. */
#define EXPECT(cond, ...)                          \
  do {                                             \
    if (!(cond)) {                                 \
      snprintf(why, sizeof why, __VA_ARGS__);      \
      return 0;                                    \
    }                                              \
  } while (0)

static inline void report(const char *name, int ok) {
  cases_run++;
  if (ok) {
    printf("ok %s\n", name);
  } else {
    cases_failed++;
    printf("not ok %s: %s\n", name, why);
  }
  fflush(stdout);
}

static inline int finish(void) {
  printf("done %d cases, %d failed\n", cases_run, cases_failed);
  return cases_failed ? 1 : 0;
}

/* One's complement sum of big-endian 16-bit words, the carry folded in at every step. */
static inline uint32_t ref_sum(uint32_t sum, const uint8_t *p, size_t n) {
  for (size_t i = 0; i + 1 < n; i += 2) {
    sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    sum = (sum & 0xffff) + (sum >> 16);
  }
  if (n & 1) {
    sum += (uint32_t)p[n - 1] << 8;
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return sum;
}

#endif
