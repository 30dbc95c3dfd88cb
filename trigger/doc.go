// Package trigger holds what starts runs. Today that is the HTTP API's on-demand submissions (package
// trigger/api, the open equivalent of `az acr build`); webhooks, registry notifications, base-image pollers and
// timers come later, each in a package of its own.
//
// Every trigger does the same two things: it records a run in the store and publishes an event defined in
// package proto, a RunRequested on proto.SubjectRunRequested. Workers (package scheduler) consume those events
// in other processes. A trigger imports only proto and store of Kiln's, never scheduler or builder: the
// messages in proto are the only link between the two sides, which is what lets them run on separate machines.
package trigger
