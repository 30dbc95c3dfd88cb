// Package tarentry decides which entries of a tar archive a build context may hold.
//
// The API checks an uploaded context as it streams in (trigger/api), and a worker unpacks it later
// (builder): both apply the rule here, so that what one accepts the other does not refuse, and what one refuses
// the other never sees. It imports nothing of Kiln's but proto, so that both sides of the wall between trigger
// and scheduler may import it.
package tarentry
