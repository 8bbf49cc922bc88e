// The configuration held in memory with wireguard-go's semantics: the reference that the
// tests drive through `wg`, and the source of truth a data path can mirror. States are
// immutable (state.ts), so a get can stream a snapshot while later requests commit.
import { plan } from "./plan.ts";
import { EMPTY_STATE } from "./state.ts";
import type { ConfigChange, ModelState, PeerConfig, PeerStats } from "./state.ts";
import type { DeviceState, PeerState, SetRequest, UapiDevice } from "./target.ts";

const NO_STATS: PeerStats = { lastHandshake: null, txBytes: 0, rxBytes: 0 };

export interface ModelDeviceOptions {
  /** Live figures for a peer (the data path's counters); zeros if absent. */
  stats?: (peer: PeerConfig) => PeerStats;
  /** Called with each committed change, after the state is in place. */
  onChange?: (change: ConfigChange, state: ModelState) => void;
}

/** A UapiDevice over the in-memory model alone. A data path can wrap plan() and commit():
 * plan, push the change into the data path (throwing a UapiError if, say, the port is taken),
 * then commit. */
export class ModelDevice implements UapiDevice {
  #state: ModelState = EMPTY_STATE;
  readonly #stats: (peer: PeerConfig) => PeerStats;
  readonly #onChange: ((change: ConfigChange, state: ModelState) => void) | undefined;

  constructor(options: ModelDeviceOptions = {}) {
    this.#stats = options.stats ?? (() => NO_STATS);
    this.#onChange = options.onChange;
  }

  get state(): ModelState {
    return this.#state;
  }

  plan(request: SetRequest): { state: ModelState; change: ConfigChange } {
    return plan(this.#state, request);
  }

  commit(state: ModelState): void {
    this.#state = state;
  }

  apply(request: SetRequest): void {
    const { state, change } = plan(this.#state, request);
    this.#state = state;
    this.#onChange?.(change, state);
  }

  get(): DeviceState {
    return snapshot(this.#state, this.#stats);
  }
}

/** A state as a get reports it; stats are read as each peer is streamed. */
export function snapshot(state: ModelState, stats: (peer: PeerConfig) => PeerStats = () => NO_STATS): DeviceState {
  return {
    privateKey: state.privateKey,
    listenPort: state.listenPort,
    fwmark: state.fwmark,
    peers: (function* (): Generator<PeerState> {
      for (const peer of state.peers.values()) {
        yield { ...peer, allowedIps: peer.allowedIps.values(), ...stats(peer) };
      }
    })(),
  };
}
