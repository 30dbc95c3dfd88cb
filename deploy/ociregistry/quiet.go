package ociregistry

import (
	"context"
	"io"
	"reflect"

	"github.com/sirupsen/logrus"
)

// dcontextPkg is the package under which distribution keeps its context helpers, loggerKey among them.
const dcontextPkg = "github.com/distribution/distribution/v3/internal/dcontext"

// quietContext is a context whose value for distribution's logger key is a logger that writes nowhere.
//
// distribution finds its logger with ctx.Value(loggerKey{}) and falls back to logrus's process-wide logger when
// there is none. The key's type is unexported in an internal package, and distribution offers no exported way
// to put a logger in a context, so quietContext recognises the key by its type's package and name. The app, its
// storage driver, its notification listeners and every request (the HTTP server's base context is a
// quietContext) derive their contexts from this one, so they all log to io.Discard. Should distribution rename
// the key, its lines would go to logrus's logger again; TestRegistryIsSilent fails when that happens.
//
// A few places call logrus's package-level functions and so bypass any context: upload purging (storage.PurgeUploads,
// at most a few lines a day) and the notification queue's warning when a closing endpoint drops events. Silencing
// those means changing the process-wide logger, which belongs to the program, not to this package.
type quietContext struct {
	context.Context
	logger *logrus.Entry
}

// withoutLogs returns a context carrying ctx's values, but neither its deadline nor its cancellation, in which
// distribution logs to io.Discard.
func withoutLogs(ctx context.Context) context.Context {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetLevel(logrus.PanicLevel) // nothing is written, so nothing need be formatted
	return quietContext{Context: context.WithoutCancel(ctx), logger: logrus.NewEntry(l)}
}

// Value returns the silent logger for distribution's logger key and ctx's value for any other key.
func (c quietContext) Value(key any) any {
	if t := reflect.TypeOf(key); t != nil && t.Name() == "loggerKey" && t.PkgPath() == dcontextPkg {
		return c.logger
	}
	return c.Context.Value(key)
}
