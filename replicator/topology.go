package replicator

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/config"
	"github.com/sluice-cdc/sluice/mysqlconn"
)

// topology is what the pipelines of one file say about each other. A
// pipeline whose MySQL sink is the source of another pipeline (A→B next to
// B→A, or a longer ring) must not send back what that pipeline applied:
// the MySQL sink marks every transaction it applies with its checkpoint
// row, and the router drops transactions marked by a pipeline that read
// them from this pipeline's sink. Such a sink also has writers of its own,
// so its updates and deletes check the whole before image to catch
// conflicting writes.
type topology struct {
	loop map[string]map[binlog.Mark]bool // per pipeline: the marks to drop
}

// serverID names a server however a DSN reaches it: by what the server
// says it is when it can be asked, else by address.
type serverID struct{ addr, self string }

func (a serverID) same(b serverID) bool {
	if a.self != "" && b.self != "" {
		return a.self == b.self
	}
	return a.addr == b.addr
}

func resolveTopology(ctx context.Context, cfg *config.File, run []*config.Pipeline, log *slog.Logger) *topology {
	ids := map[string]serverID{}
	id := func(d mysqlconn.DSN) serverID {
		key := d.String()
		if v, ok := ids[key]; ok {
			return v
		}
		v := identify(ctx, d)
		ids[key] = v
		return v
	}
	t := &topology{loop: map[string]map[binlog.Mark]bool{}}
	for _, p := range run {
		if p.Sink.Type != "mysql" {
			continue
		}
		sink := id(p.Sink.Conn)
		for _, q := range cfg.Pipelines {
			for _, s := range q.Sources {
				if id(s.Conn).same(sink) {
					if t.loop[p.Name] == nil {
						t.loop[p.Name] = map[binlog.Mark]bool{}
					}
					t.loop[p.Name][binlog.Mark{Pipeline: q.Name, Source: s.Name}] = true
					// The reverse pipeline's lease row (a takeover) marks
					// the pipeline as a whole.
					t.loop[p.Name][binlog.Mark{Pipeline: q.Name}] = true
					log.Info("the sink is read by another pipeline: not sending back what it applies, and checking before images for conflicts",
						"pipeline", p.Name, "reverse", q.Name+"/"+s.Name)
				}
			}
		}
	}
	return t
}

// identify asks a server for its host name, port and server id. An
// unreachable server is named by its address (localhost as 127.0.0.1).
func identify(ctx context.Context, d mysqlconn.DSN) serverID {
	host := strings.ToLower(d.Host)
	if host == "localhost" || host == "::1" || host == "" {
		host = "127.0.0.1"
	}
	id := serverID{addr: fmt.Sprintf("%s:%d", host, d.Port)}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	db, err := mysqlconn.Open(ctx, d, nil)
	if err != nil {
		return id
	}
	defer db.Close()
	var name string
	var port, serverID uint64
	if err := db.QueryRowContext(ctx, "SELECT @@hostname, @@port, @@server_id").Scan(&name, &port, &serverID); err == nil {
		id.self = fmt.Sprintf("%s:%d/%d", name, port, serverID)
	}
	return id
}
