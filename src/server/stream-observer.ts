/**
 * How a stream reports what happens on it (go-control-plane's server Callbacks): the stream
 * registry implements it, and a test or another observer can stand in for it. Called
 * synchronously on the protocol path, so an implementation must be quick.
 */
import type { NackRecord, StreamRecord, TypeState } from './stream-state.js';

export interface StreamObserver {
  /** A stream was accepted; no request yet. */
  onConnect(record: StreamRecord): void;
  /** The stream's first request arrived: its node (if it sent one) is known. */
  onOpen(record: StreamRecord): void;
  /** The stream is gone (ended by either side, or failed). */
  onClose(record: StreamRecord): void;
  /** A response of `st.sentVersion` with nonce `st.nonce` was written. */
  onResponse(record: StreamRecord, st: TypeState, resources: number, bytes: number): void;
  /** The client accepted the response with nonce `st.nonce`. */
  onAck(record: StreamRecord, st: TypeState): void;
  /** The client rejected the response with nonce `st.nonce`. */
  onNack(record: StreamRecord, st: TypeState, nack: NackRecord): void;
}
