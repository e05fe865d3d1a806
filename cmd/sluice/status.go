package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluice-cdc/sluice/config"
	"github.com/sluice-cdc/sluice/replicator"
)

const statusUsage = `usage: sluice status -c FILE [--pipeline NAME]...

Prints each source's state, checkpoint and lag, as the running daemon
reports them on http.listen; when no daemon answers, the checkpoints the
sinks hold.

flags:
`

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", statusUsage, stderr)
	path := configFlag(fs)
	var pipelines listFlag
	fs.Var(&pipelines, "pipeline", "only this pipeline; repeatable")
	logs := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := logs.oneShot(stderr)
	if err != nil {
		return err
	}
	file, err := configPath(fs, *path)
	if err != nil {
		return err
	}
	cfg, loadErr := config.Load(file)
	var unset []string
	if loadErr != nil {
		// The daemon's /status needs no secrets: a file whose only problem
		// is a password variable not set in this shell will do for it.
		lenient, names, err := config.LoadUnset(file)
		if err != nil || len(names) == 0 {
			return loadErr
		}
		cfg, unset = lenient, names
	}
	if err := checkPipelines(cfg, pipelines); err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	defer w.Flush()
	if cfg.HTTP.Listen != "off" {
		rep, err := fetchStatus(ctx, cfg.HTTP.Listen)
		if err == nil {
			fmt.Fprintf(w, "PIPELINE\tSOURCE\tSTATE\tROLE\tLAG\tLAG TXNS\tAPPLIED\tROWS\tCHECKPOINT\tERROR\n")
			for _, s := range rep.Sources {
				if len(pipelines) > 0 && !slices.Contains(pipelines, s.Pipeline) {
					continue
				}
				ckpt := s.CheckpointGTID
				if ckpt == "" {
					ckpt = s.CheckpointPos
				}
				msg := s.Error
				if p := s.Snapshot; p != nil {
					msg = fmt.Sprintf("snapshot: %d/%d tables, %d of ~%d rows, %.0f rows/s, ETA %s", p.TablesDone, p.Tables, p.Rows, p.RowsTotal, p.RowsPerSecond, p.ETA)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.1fs\t%d\t%d\t%d\t%s\t%s\n", s.Pipeline, s.Source, s.State, role(s), s.LagSeconds, s.LagTransactions,
					s.Applied, s.Rows, ckpt, msg)
			}
			return nil
		}
		if len(unset) > 0 {
			return fmt.Errorf("sluice is not running (no answer on %s), and reading the checkpoints from the sinks needs %s set: %w", cfg.HTTP.Listen, strings.Join(unset, ", "), loadErr)
		}
		fmt.Fprintf(stdout, "sluice is not running (no answer on %s); checkpoints held by the sinks:\n", cfg.HTTP.Listen)
	} else if len(unset) > 0 {
		return loadErr
	}
	fmt.Fprintf(w, "PIPELINE\tSOURCE\tCHECKPOINT\tPOSITION\tUPDATED\n")
	for _, p := range cfg.Pipelines {
		if len(pipelines) > 0 && !slices.Contains(pipelines, p.Name) {
			continue
		}
		sink, err := replicator.OpenSink(ctx, p, replicator.SinkOptions{Logger: log})
		if err != nil {
			fmt.Fprintf(w, "%s\t-\t%v\t\t\n", p.Name, oneLine(err.Error()))
			continue
		}
		for _, s := range p.Sources {
			st, ok, err := sink.Checkpoint(ctx, s.Name)
			switch {
			case err != nil:
				fmt.Fprintf(w, "%s\t%s\t%v\t\t\n", p.Name, s.Name, err)
			case !ok:
				fmt.Fprintf(w, "%s\t%s\t(none yet)\t\t\n", p.Name, s.Name)
			default:
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", p.Name, s.Name, st.GTID, st.Pos, st.Updated.Format(time.RFC3339))
			}
		}
		sink.Close()
	}
	return nil
}

// role is a source's lease role: "active (epoch N)", "standby (held by
// HOLDER, epoch N)", or "-" for sinks without a lease.
func role(s replicator.SourceStatus) string {
	switch s.Role {
	case "":
		return "-"
	case "standby":
		return fmt.Sprintf("standby (held by %s, epoch %d)", s.LeaseHolder, s.LeaseEpoch)
	}
	return fmt.Sprintf("%s (epoch %d)", s.Role, s.LeaseEpoch)
}

func fetchStatus(ctx context.Context, addr string) (*replicator.StatusReport, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var rep replicator.StatusReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return nil, err
	}
	return &rep, nil
}
