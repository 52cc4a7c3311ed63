package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/transforms/decode"
)

// writeDropped writes the count of dropped (non-allowlisted) field names per
// event type (SPEC §3.3). Field names only, never values.
func writeDropped(w io.Writer, dropped func() map[decode.DroppedField]int64) {
	if dropped == nil {
		return
	}
	m := dropped()
	keys := slices.SortedFunc(maps.Keys(m), func(a, b decode.DroppedField) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), strings.Compare(a.Field, b.Field))
	})
	fmt.Fprintf(w, "# HELP deid_decode_dropped_fields_total Fields skipped by the allowlist, by event type and field name.\n# TYPE deid_decode_dropped_fields_total counter\n")
	for _, k := range keys {
		fmt.Fprintf(w, "deid_decode_dropped_fields_total{event_type=%q,field=%q} %d\n", k.Kind.String(), k.Field, m[k])
	}
}

// serveOps serves the operations endpoints: /metrics (Prometheus text
// format), /healthz (the process is alive) and /readyz (consent caught up
// and partitions assigned). It returns once listening.
func serveOps(addr string, stats *pipeline.Stats, ready func() bool, dropped func() map[decode.DroppedField]int64, log *zap.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http_addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready == nil || !ready() || stats.Partitions.Load() == 0 {
			http.Error(w, "not ready: consent not caught up or no partition assigned", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		stats.WritePrometheus(w)
		writeDropped(w, dropped)
	})
	srv := &http.Server{Handler: mux}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("operations server stopped", zap.Error(err))
		}
	}()
	log.Info("serving /metrics, /healthz, /readyz", zap.String("addr", ln.Addr().String()))
	return srv, nil
}
