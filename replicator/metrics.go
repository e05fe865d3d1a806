package replicator

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus series of every pipeline and source.
type Metrics struct {
	reg *prometheus.Registry

	txns       *prometheus.CounterVec
	rows       *prometheus.CounterVec
	bytes      *prometheus.CounterVec
	ddl        *prometheus.CounterVec
	retries    *prometheus.CounterVec
	conflicts  *prometheus.CounterVec
	errors     *prometheus.CounterVec
	lagSeconds *prometheus.GaugeVec
	lagTxns    *prometheus.GaugeVec
	ckptAge    *prometheus.GaugeVec
	up         *prometheus.GaugeVec
	sinkUp     *prometheus.GaugeVec
	standby    *prometheus.GaugeVec
	snapshot   snapshotMetrics
}

// NewMetrics registers sluice's series in a registry of their own.
func NewMetrics() *Metrics {
	labels := []string{"pipeline", "source"}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		txns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_transactions_applied_total",
			Help: "Source transactions applied to the sink."}, labels),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_rows_applied_total",
			Help: "Row changes applied to the sink."}, labels),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_source_bytes_read_total",
			Help: "Binlog bytes of the transactions read."}, labels),
		ddl: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_ddl_total",
			Help: "Statement transactions (DDL) handled."}, labels),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_sink_retries_total",
			Help: "Transactions retried after a retryable sink error (deadlock, lost connection, restart)."}, labels),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_conflicts_total",
			Help: "Row conflicts met on the sink (handled by on_conflict)."}, labels),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_errors_total",
			Help: "Errors that stopped a source."}, labels),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_lag_seconds",
			Help: "Seconds between the newest applied transaction's commit and now, 0 when caught up."}, labels),
		lagTxns: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_lag_transactions",
			Help: "Transactions the source has executed that are not applied yet (GTID sources)."}, labels),
		ckptAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_checkpoint_age_seconds",
			Help: "Seconds the checkpoint has stood while the source has transactions it does not cover; 0 when caught up, even on an idle pipeline."}, labels),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_source_up",
			Help: "1 while the source is streaming, 0 otherwise."}, labels),
		sinkUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_sink_up",
			Help: "0 while the sink is being retried (target or NATS unreachable, restarting, locked), 1 otherwise."}, labels),
		standby: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_standby",
			Help: "1 while this process stands by for the pipeline's lease, which another process holds; 0 otherwise."}, labels),
	}
	m.reg.MustRegister(m.txns, m.rows, m.bytes, m.ddl, m.retries, m.conflicts, m.errors, m.lagSeconds, m.lagTxns, m.ckptAge, m.up, m.sinkUp, m.standby)
	m.snapshot = newSnapshotMetrics(m.reg, labels)
	return m
}

// Registry is the registry to serve.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// init creates every series of a source at 0, so that dashboards and
// alerts (rate(sluice_errors_total[5m]), absent()) see them before the
// first event.
func (m *Metrics) init(pipeline, source string) {
	for _, c := range []*prometheus.CounterVec{m.txns, m.rows, m.bytes, m.ddl, m.retries, m.conflicts, m.errors} {
		c.WithLabelValues(pipeline, source)
	}
	for _, g := range []*prometheus.GaugeVec{m.lagSeconds, m.lagTxns, m.ckptAge, m.up, m.sinkUp, m.standby} {
		g.WithLabelValues(pipeline, source)
	}
	m.snapshot.init(pipeline, source)
}
