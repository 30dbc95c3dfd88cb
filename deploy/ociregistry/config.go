package ociregistry

import (
	"net/http"
	"time"

	"github.com/distribution/distribution/v3/configuration"
)

// Notification endpoint settings: how long one POST may take, how many failures in a row open the circuit
// breaker, and how long it stays open before the next try. distribution retries an envelope until it is
// delivered, holding undelivered events in memory.
const (
	notifyTimeout   = 5 * time.Second
	notifyThreshold = 3
	notifyBackoff   = time.Second
)

// Endpoint is a notification endpoint: distribution POSTs event envelopes there, with the media type
// application/vnd.docker.distribution.events.v2+json, for every manifest and blob push, pull and delete.
type Endpoint struct {
	Name    string
	URL     string
	Headers http.Header
}

// Config says where the registry keeps its data, where it listens, whom it lets in and whom it notifies.
type Config struct {
	Dir    string     // storage root
	Addr   string     // "127.0.0.1:5000", or "127.0.0.1:0" for a free port
	Notify []Endpoint // optional
	// User and Password are the credentials of HTTP Basic authentication. Every push and delete needs them;
	// pulls need them too unless the registry listens on loopback only.
	User     string
	Password string
}

// configuration returns distribution's configuration for a registry with cfg's storage and endpoints,
// listening on addr: filesystem storage with deletes enabled, an in-memory blob descriptor cache, no access
// log and no authentication of its own (basicAuth stands in front of it).
func (cfg Config) configuration(addr string) *configuration.Configuration {
	c := &configuration.Configuration{
		Version: configuration.CurrentVersion,
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": cfg.Dir},
			"delete":     configuration.Parameters{"enabled": true},
			"cache":      configuration.Parameters{"blobdescriptor": "inmemory"},
		},
	}
	c.HTTP.Addr = addr
	c.Log.AccessLog.Disabled = true
	// configuration.Parse sets these defaults; a Configuration built in Go has to set them itself.
	c.Log.Level = "error"
	c.Catalog.MaxEntries = 1000
	c.Tags.MaxTags = 1000
	for _, e := range cfg.Notify {
		name := e.Name
		if name == "" {
			name = e.URL
		}
		c.Notifications.Endpoints = append(c.Notifications.Endpoints, configuration.Endpoint{
			Name:      name,
			URL:       e.URL,
			Headers:   e.Headers,
			Timeout:   notifyTimeout,
			Threshold: notifyThreshold,
			Backoff:   notifyBackoff,
		})
	}
	return c
}
