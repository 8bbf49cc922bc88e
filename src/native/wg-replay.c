/* See wg-replay.h. */
#include "wg-replay.h"
#include <string.h>
#include "wg-protocol.h"

void replay_reset(replay_t *w) {
  memset(w, 0, sizeof *w);
}

static unsigned block_of(uint64_t counter) {
  return (unsigned)((counter / REPLAY_BLOCK_BITS) % REPLAY_BLOCKS);
}

static uint64_t bit_of(uint64_t counter) {
  return UINT64_C(1) << (counter % REPLAY_BLOCK_BITS);
}

int replay_check(const replay_t *w, uint64_t counter) {
  if (counter >= WG_REJECT_AFTER_MESSAGES) return 0;
  if (counter > w->newest) return 1;
  if (w->newest - counter > REPLAY_WINDOW) return 0;
  return !(w->ring[block_of(counter)] & bit_of(counter));
}

int replay_mark(replay_t *w, uint64_t counter) {
  if (!replay_check(w, counter)) return 0;
  if (counter > w->newest) {
    /* Slide: the blocks entered between the old newest and this one start empty. A jump
     * of a whole ring or more empties every block. */
    uint64_t from = w->newest / REPLAY_BLOCK_BITS, to = counter / REPLAY_BLOCK_BITS;
    uint64_t n = to - from < REPLAY_BLOCKS ? to - from : REPLAY_BLOCKS;
    for (uint64_t k = 1; k <= n; k++) w->ring[(from + k) % REPLAY_BLOCKS] = 0;
    w->newest = counter;
  }
  w->ring[block_of(counter)] |= bit_of(counter);
  return 1;
}
