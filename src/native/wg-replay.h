/* The anti-replay window of a receiving keypair: RFC 6479's ring of 64-bit blocks, one
 * block kept free so the window slides a block at a time; 127 x 64 = 8128 counters behind
 * the newest are usable, as in the Linux kernel and wireguard-go. Not safe for
 * concurrent marks (one thread receives). */
#ifndef UDPTUN_WG_REPLAY_H
#define UDPTUN_WG_REPLAY_H

#include <stdint.h>

#define REPLAY_BLOCK_BITS 64
#define REPLAY_BLOCKS 128
#define REPLAY_WINDOW ((REPLAY_BLOCKS - 1) * REPLAY_BLOCK_BITS)

typedef struct {
  uint64_t newest; /* highest counter marked (0 when empty: counter 0 is still unmarked) */
  uint64_t ring[REPLAY_BLOCKS];
} replay_t;

void replay_reset(replay_t *w);
/* Whether counter would be accepted: below WG_REJECT_AFTER_MESSAGES, not marked, and not
 * more than REPLAY_WINDOW behind the newest. Changes nothing (checked before decrypting). */
int replay_check(const replay_t *w, uint64_t counter);
/* Accepts and marks counter (call once the message authenticated); 0 if refused. */
int replay_mark(replay_t *w, uint64_t counter);

#endif
