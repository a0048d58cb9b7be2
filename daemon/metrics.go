package daemon

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abuse-responder/abuse-responder/store"
)

// Metrics are the daemon's Prometheus metrics, on a registry of its own
// (no global state), served by cmd on [metrics] listen.
type Metrics struct {
	Registry         *prometheus.Registry
	messages         prometheus.Counter
	notices          prometheus.Counter
	parseFailures    prometheus.Counter
	approvalsRefused prometheus.Counter
	replies          prometheus.Counter
	IMAPReconnects   prometheus.Counter
	mailSent         *prometheus.CounterVec
	noticeToSummary  prometheus.Histogram
	blockDrift       prometheus.Counter
	blockFailures    prometheus.Counter
}

// NewMetrics registers the metrics; with st it also reports cases by
// state, read from the store at each scrape.
func NewMetrics(st *store.Store) *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry:         r,
		messages:         prometheus.NewCounter(prometheus.CounterOpts{Name: "abuse_responder_messages_total", Help: "Mails fetched and stored."}),
		notices:          prometheus.NewCounter(prometheus.CounterOpts{Name: "abuse_responder_notices_total", Help: "Mails recognised as AWS abuse notices."}),
		parseFailures:    prometheus.NewCounter(prometheus.CounterOpts{Name: "abuse_responder_parse_failures_total", Help: "Mails that could not be read; kept and reported to the admins."}),
		approvalsRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "abuse_responder_approvals_refused_total", Help: "Replies to a summary that were not accepted as approvals."}),
		replies:          prometheus.NewCounter(prometheus.CounterOpts{Name: "abuse_responder_replies_sent_total", Help: "Replies to AWS sent."}),
		IMAPReconnects:   prometheus.NewCounter(prometheus.CounterOpts{Name: "abuse_responder_imap_reconnects_total", Help: "IMAP connection attempts after the first."}),
		mailSent:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "abuse_responder_mail_sent_total", Help: "Mails sent over SMTP, by kind."}, []string{"kind"}),
		noticeToSummary: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "abuse_responder_notice_to_summary_seconds",
			Help: "From storing a notice to queueing its summary.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}),
		blockDrift:    prometheus.NewCounter(prometheus.CounterOpts{Name: "abuse_responder_block_drift_total", Help: "Blocks found no longer holding by the maintenance pass."}),
		blockFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "abuse_responder_block_failures_total", Help: "Attempts to block a case that failed (retried, or handed to a human)."}),
	}
	r.MustRegister(m.messages, m.notices, m.parseFailures, m.approvalsRefused, m.replies, m.IMAPReconnects, m.mailSent, m.noticeToSummary,
		m.blockDrift, m.blockFailures)
	if st != nil {
		r.MustRegister(&caseCollector{st: st}, &blockCollector{st: st})
	}
	return m
}

var caseDesc = prometheus.NewDesc("abuse_responder_cases", "Cases by state.", []string{"state"}, nil)

// caseCollector counts cases by state at scrape time, so the figure is
// the store's, never a counter that drifts after a restart.
type caseCollector struct{ st *store.Store }

func (c *caseCollector) Describe(ch chan<- *prometheus.Desc) { ch <- caseDesc }

func (c *caseCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts := map[string]int{}
	_ = c.st.View(ctx, func(tx *store.Tx) error {
		cases, err := tx.Cases(store.CaseFilter{})
		for _, cs := range cases {
			counts[string(cs.State)]++
		}
		return err
	})
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(caseDesc, prometheus.GaugeValue, float64(n), state)
	}
}

var blockDesc = prometheus.NewDesc("abuse_responder_blocks", "Blocks by kind and state (applying, applied, verified, failed, removing, removed).", []string{"kind", "state"}, nil)

// blockCollector counts the store's blocks at scrape time, like
// caseCollector.
type blockCollector struct{ st *store.Store }

func (c *blockCollector) Describe(ch chan<- *prometheus.Desc) { ch <- blockDesc }

func (c *blockCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts := map[[2]string]int{}
	_ = c.st.View(ctx, func(tx *store.Tx) error {
		blocks, err := tx.Blocks(store.BlockFilter{})
		for _, b := range blocks {
			counts[[2]string{b.Kind, string(b.State)}]++
		}
		return err
	})
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(blockDesc, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
}
