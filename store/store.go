package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/proto"
)

// The buckets the store keeps. Only this package reads or writes them.
const (
	bucketRuns     = "kiln_runs"
	bucketMeta     = "kiln_meta"
	bucketContexts = "kiln_contexts"
	bucketLogs     = "kiln_logs"
	// bucketTasks holds tasks by name; bucketDeliveries remembers webhook deliveries already handled;
	// bucketLatest holds, per task and branch, the newest run a git event started.
	bucketTasks      = "kiln_tasks"
	bucketDeliveries = "kiln_deliveries"
	bucketLatest     = "kiln_latest"
	// bucketBases holds each task's base image state (proto.TaskBases); bucketTags what Kiln last learned of
	// each tracked base image tag (proto.TagState).
	bucketBases = "kiln_bases"
	bucketTags  = "kiln_tags"
	// bucketSecrets holds the secrets task files name, by name. Only workers read values.
	bucketSecrets = "kiln_secrets"
)

// The defaults a zero Config field stands for.
const (
	defaultLogMaxAge     = 48 * time.Hour
	defaultContextMaxAge = 7 * 24 * time.Hour
	deliveriesMaxAge     = 30 * 24 * time.Hour // GitHub lets a delivery be redelivered by hand for 30 days
	statusMaxAge         = 24 * time.Hour
	imagesMaxAge         = 24 * time.Hour
	runsDuplicateWindow  = 2 * time.Minute
	logsDuplicateWindow  = 2 * time.Minute
)

// Config says how the store's buckets and streams are made.
type Config struct {
	Replicas      int           // JetStream replicas of every bucket and stream; 0 means 1
	LogMaxAge     time.Duration // how long live log chunks stay on the log stream; 0 means 48h
	ContextMaxAge time.Duration // how long uploaded contexts are kept; 0 means 7 days
}

// withDefaults returns cfg with its zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.LogMaxAge == 0 {
		cfg.LogMaxAge = defaultLogMaxAge
	}
	if cfg.ContextMaxAge == 0 {
		cfg.ContextMaxAge = defaultContextMaxAge
	}
	return cfg
}

// Store is Kiln's shared state on JetStream: runs, the run ID counter, build contexts, logs, tasks, the webhook
// deliveries already handled and the newest run of each task and branch. It is safe
// for concurrent use, and any number of Stores in any number of processes may share the same JetStream.
type Store struct {
	js       jetstream.JetStream
	runs     jetstream.KeyValue
	meta     jetstream.KeyValue
	contexts jetstream.ObjectStore
	logs     jetstream.ObjectStore
	logStrm  jetstream.Stream

	tasks      jetstream.KeyValue
	deliveries jetstream.KeyValue
	latest     jetstream.KeyValue
	bases      jetstream.KeyValue
	tags       jetstream.KeyValue
	secrets    jetstream.KeyValue

	ids    *idBatcher    // NextRunID's calls waiting together
	recent *recentLatest // the runs SetLatest recorded
}

// Open creates (or updates, idempotently) the buckets and streams Kiln needs and returns a Store. Every
// process calls it on every start, several at once if they like: each bucket and stream is made with a
// create-or-update of the same configuration.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if cfg.Replicas < 0 || cfg.LogMaxAge < 0 || cfg.ContextMaxAge < 0 {
		return nil, proto.Errorf(proto.Invalid, "opening store: negative value in %+v", cfg)
	}
	s := &Store{js: js, ids: &idBatcher{}, recent: newRecentLatest()}

	err := ensure(ctx, func(ctx context.Context) error {
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        proto.StreamRuns,
			Description: "Kiln run requests, held until a worker takes them",
			Subjects:    []string{proto.SubjectRunRequested},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			Duplicates:  runsDuplicateWindow,
		})
		return err
	})
	if err != nil {
		return nil, wrap(err, "creating stream %s", proto.StreamRuns)
	}

	for _, kv := range []struct {
		bucket string
		ttl    time.Duration
		into   *jetstream.KeyValue
	}{
		{bucketRuns, 0, &s.runs}, {bucketMeta, 0, &s.meta}, {bucketTasks, 0, &s.tasks},
		{bucketDeliveries, deliveriesMaxAge, &s.deliveries}, {bucketLatest, 0, &s.latest},
		{bucketBases, 0, &s.bases}, {bucketTags, 0, &s.tags}, {bucketSecrets, 0, &s.secrets},
	} {
		err := ensure(ctx, func(ctx context.Context) error {
			var err error
			*kv.into, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
				Bucket:   kv.bucket,
				History:  1,
				TTL:      kv.ttl,
				Storage:  jetstream.FileStorage,
				Replicas: cfg.Replicas,
			})
			return err
		})
		if err != nil {
			return nil, wrap(err, "creating bucket %s", kv.bucket)
		}
	}

	for _, obj := range []struct {
		bucket string
		ttl    time.Duration
		into   *jetstream.ObjectStore
	}{{bucketContexts, cfg.ContextMaxAge, &s.contexts}, {bucketLogs, 0, &s.logs}} {
		err := ensure(ctx, func(ctx context.Context) error {
			var err error
			*obj.into, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
				Bucket:   obj.bucket,
				TTL:      obj.ttl,
				Storage:  jetstream.FileStorage,
				Replicas: cfg.Replicas,
			})
			return err
		})
		if err != nil {
			return nil, wrap(err, "creating object store %s", obj.bucket)
		}
	}

	err = ensure(ctx, func(ctx context.Context) error {
		var err error
		logs := jetstream.StreamConfig{
			Name:        proto.StreamLogs,
			Description: "Kiln run logs while they are written, one subject per run",
			Subjects:    []string{proto.LogSubject(">")},
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			MaxAge:      cfg.LogMaxAge,
			Duplicates:  logsDuplicateWindow,
		}
		// A running build's log promises nothing: it is acknowledged before it reaches the disk, which a server
		// that syncs every write would otherwise do for each batch of every build's log. nats-server allows it
		// on a stream that is not replicated, and only when the stream is made: one made before keeps its mode.
		if cfg.Replicas <= 1 {
			logs.PersistMode = jetstream.AsyncPersistMode
		}
		s.logStrm, err = js.CreateOrUpdateStream(ctx, logs)
		if err != nil && logs.PersistMode == jetstream.AsyncPersistMode && strings.Contains(err.Error(), "persist mode") {
			logs.PersistMode = jetstream.DefaultPersistMode
			s.logStrm, err = js.CreateOrUpdateStream(ctx, logs)
		}
		return err
	})
	if err != nil {
		return nil, wrap(err, "creating stream %s", proto.StreamLogs)
	}

	err = ensure(ctx, func(ctx context.Context) error {
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        proto.StreamStatus,
			Description: "Kiln run status changes, for the reporters that tell other systems",
			Subjects:    []string{proto.SubjectStatusAll},
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			MaxAge:      statusMaxAge,
		})
		return err
	})
	if err != nil {
		return nil, wrap(err, "creating stream %s", proto.StreamStatus)
	}

	err = ensure(ctx, func(ctx context.Context) error {
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        proto.StreamImages,
			Description: "Kiln image pushes: by its runs, told by registries, found by polling",
			Subjects:    []string{proto.SubjectImagePushed},
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			MaxAge:      imagesMaxAge,
		})
		return err
	})
	if err != nil {
		return nil, wrap(err, "creating stream %s", proto.StreamImages)
	}
	return s, nil
}

// ensure runs a create-or-update, trying again when another process created the same stream between this
// one's update and create.
func ensure(ctx context.Context, createOrUpdate func(ctx context.Context) error) error {
	var err error
	for range 3 {
		err = createOrUpdate(ctx)
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return err
		}
	}
	return err
}

// wrap says what was being done when err happened, once, and marks errors that mean NATS did not answer as
// proto.Unavailable so that callers retry them. An error that already has a kind keeps it.
func wrap(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	var perr *proto.Error
	if !errors.As(err, &perr) && transient(err) {
		return proto.Errorf(proto.Unavailable, "%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// transient reports whether err means NATS or JetStream did not answer, so that the same call may work later.
func transient(err error) bool {
	for _, target := range []error{
		context.DeadlineExceeded,
		nats.ErrTimeout,
		nats.ErrNoResponders,
		nats.ErrConnectionClosed,
		nats.ErrConnectionReconnecting,
		nats.ErrDisconnected,
		jetstream.ErrNoStreamResponse,
		jetstream.ErrNoHeartbeat,
		jetstream.ErrConnectionClosed,
		jetstream.ErrServerShutdown,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
