// Package proto holds what Kiln's parts say to each other: the protobuf records and events (kiln.proto and its
// generated Go), the NATS subjects and stream names they travel on, and the small set of error kinds every
// package uses. It imports nothing of Kiln's, so that triggers, which publish events, and the scheduler, which
// consumes them, can share it without knowing each other.
package proto

//go:generate protoc --go_out=. --go_opt=paths=source_relative kiln.proto
