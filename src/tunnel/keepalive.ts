// Persistent keepalives, decided without I/O (WireGuard's PersistentKeepalive): a peer with
// an interval of N seconds gets a keepalive once nothing has been sent to it for N seconds,
// data or keepalive, and one at once when the setting turns on (so the far side can reach
// us through a NAT from the start).
//
// The data path is not touched: it already counts packets sent per peer, and a poll every
// tickMs compares that count with the one it saw last. A change means "sent since the last
// poll", so a keepalive never leaves before N quiet seconds, and at most one tick after.

/** What the schedule reads of a peer: the data packets sent to it so far. */
export interface KeepaliveTarget {
  readonly txPackets: number;
}

interface Entry {
  intervalMs: number;
  /** txPackets at the last poll. */
  seenTx: number;
  /** Nothing has been sent to the peer since this time (ms); -Infinity: due at once. */
  quietSince: number;
}

/** The longest poll period; a quarter of the shortest interval when that is shorter. */
const MAX_TICK_MS = 1000;

export class KeepaliveSchedule<P extends KeepaliveTarget> {
  private entries = new Map<P, Entry>();
  /** How often due() should be called: 0 while no peer has keepalives on. */
  tickMs = 0;

  /**
   * Sets the peers and their intervals (seconds, 0 = off), at start and on every reload. A
   * peer already on keeps its quiet time under a new interval; one turning on is due at once;
   * peers not listed are forgotten.
   */
  set(peers: readonly { peer: P; seconds: number }[]): void {
    const next = new Map<P, Entry>();
    for (const { peer, seconds } of peers) {
      if (seconds <= 0) continue;
      const old = this.entries.get(peer);
      next.set(peer, {
        intervalMs: seconds * 1000,
        seenTx: old ? old.seenTx : peer.txPackets,
        quietSince: old ? old.quietSince : -Infinity,
      });
    }
    this.entries = next;
    let shortest = Infinity;
    for (const e of next.values()) shortest = Math.min(shortest, e.intervalMs);
    this.tickMs = next.size === 0 ? 0 : Math.min(MAX_TICK_MS, shortest / 4);
  }

  /** The peers due a keepalive at now (ms, monotonic). Call sent() for each one that left. */
  due(now: number): P[] {
    const out: P[] = [];
    for (const [peer, e] of this.entries) {
      if (peer.txPackets !== e.seenTx) {
        e.seenTx = peer.txPackets;
        e.quietSince = now;
      } else if (now - e.quietSince >= e.intervalMs) {
        out.push(peer);
      }
    }
    return out;
  }

  /** A keepalive to peer left at now: the interval counts from here. */
  sent(peer: P, now: number): void {
    const e = this.entries.get(peer);
    if (e) e.quietSince = now;
  }
}
