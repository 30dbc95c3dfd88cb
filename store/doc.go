// Package store is the one place every Kiln process keeps and finds its state: API servers, triggers and
// workers, on one machine or several, all open the same Store on the same NATS JetStream.
//
// It holds:
//
//   - run records, one protobuf-encoded proto.Run per run ID, in the KV bucket kiln_runs;
//   - the run ID counter in the KV bucket kiln_meta, advanced by compare-and-swap so that IDs (k1, k2, ...) are
//     unique across processes and restarts;
//   - uploaded build contexts in the object store kiln_contexts, dropped after Config.ContextMaxAge;
//   - live log chunks on the stream proto.StreamLogs, one subject per run (proto.LogSubject), kept for
//     Config.LogMaxAge, and each finished run's whole log as one object in the object store kiln_logs, kept
//     for good;
//   - the stream proto.StreamRuns, on which triggers publish proto.RunRequested events for workers. The store
//     only creates it; publishers and the scheduler use it directly.
//
// Why JetStream: Kiln already needs NATS to hand runs to workers, and JetStream gives, on that same
// connection, a key-value store with compare-and-swap, an object store for archives, and streams a reader can
// follow live. It is one store that all processes share without a database beside it, and a NATS cluster
// replicates it (Config.Replicas) so losing a machine loses neither runs nor logs.
//
// The package never logs. Its errors say what was being done and, where the kind matters to a caller, carry
// a proto error code: proto.NotFound for a missing run, context or log, proto.Conflict for a run ID taken,
// proto.Invalid for a malformed ID, and proto.Unavailable when NATS did not answer in time.
package store
