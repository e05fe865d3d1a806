package replicator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/sluice-cdc/sluice/config"
	"github.com/sluice-cdc/sluice/mysqlconn"
	mysqlsink "github.com/sluice-cdc/sluice/sinks/mysql"
	natssink "github.com/sluice-cdc/sluice/sinks/nats"
)

// SinkOptions are what the replicator knows about a sink beyond its
// configuration.
type SinkOptions struct {
	Logger *slog.Logger
	// Bidirectional: the sink is the source of another pipeline, so it
	// has writers of its own (sinks/mysql CheckBeforeImage).
	Bidirectional bool
}

// OpenSink opens the sink a pipeline's configuration describes.
func OpenSink(ctx context.Context, p *config.Pipeline, o SinkOptions) (Sink, error) {
	log := o.Logger
	switch p.Sink.Type {
	case "mysql":
		return mysqlsink.Open(ctx, mysqlsink.Config{DSN: p.Sink.Conn, Pipeline: p.Name, DDL: p.Sink.DDL,
			OnConflict: p.Sink.OnConflict, DDLDone: p.Sink.DDLDone, Skip: p.Sink.Skip, Logger: log, Workers: p.Sink.Workers,
			CheckBeforeImage: o.Bidirectional, TrackWriters: o.Bidirectional || len(p.Sources) > 1, SnapshotSkipBinlog: p.Sink.SnapshotBinlog == "skip"})
	case "nats":
		k := p.Sink
		cfg := natssink.Config{URL: k.URL, Creds: k.Creds, NKey: k.NKey, TLSCA: k.TLS.CA, TLSCert: k.TLS.Cert, TLSKey: k.TLS.Key,
			Pipeline: p.Name, Stream: k.Stream.Name, StreamSubjects: k.Stream.Subjects, CreateStream: k.Stream.Create,
			Replicas: k.Stream.Replicas, Subject: k.Subject, DDLSubject: k.DDLSubject, PKBuckets: k.PKBuckets, Format: k.Format,
			Mode: k.Mode, Checkpoint: k.Checkpoint, KVBucket: k.KVBucket, SourceDSN: map[string]mysqlconn.DSN{}, Logger: log,
			TransactionSubject: k.TransactionSubject,
			Canal:              natssink.CanalOptions{TimeZone: k.Canal.Location, EnumSet: k.Canal.EnumSet, Rows: k.Canal.Rows},
			Debezium: natssink.DebeziumOptions{Schemas: k.Debezium.Schemas, TopicPrefix: k.Debezium.TopicPrefix,
				DecimalMode: k.Debezium.DecimalHandlingMode, BigintUnsignedMode: k.Debezium.BigintUnsignedHandlingMode,
				TransactionMetadata: k.Debezium.TransactionMetadata, Tombstones: k.Debezium.Tombstones, KeySubject: k.Debezium.KeySubject}}
		for _, s := range p.Sources {
			cfg.SourceDSN[s.Name] = s.Conn
		}
		for _, o := range k.Outbox {
			cfg.Outbox = append(cfg.Outbox, natssink.Outbox{Table: o.Table, SubjectColumn: o.SubjectColumn, KeyColumn: o.KeyColumn,
				PayloadColumn: o.PayloadColumn, SubjectPrefix: o.SubjectPrefix, Delete: o.Delete})
		}
		return natssink.Open(ctx, cfg)
	}
	return nil, fmt.Errorf("sink type %q is not available", p.Sink.Type)
}

// sinkRetryable reports whether a source's or sink's error may go away by
// waiting: MySQL/MariaDB errors as mysqlconn classifies them, NATS errors
// as the NATS sink does.
func sinkRetryable(err error) bool {
	var ue *mysqlconn.UserError
	if errors.As(err, &ue) || mysqlconn.ErrorNumber(err) != 0 {
		return mysqlconn.Retryable(err)
	}
	return mysqlconn.Retryable(err) || natssink.Retryable(err)
}
