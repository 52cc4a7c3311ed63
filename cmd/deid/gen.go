package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mya/deid/internal/gen"
	kafkasrc "github.com/mya/deid/sources/kafka"
)

func cmdGen(args []string, stdout, stderr io.Writer) error {
	cfg := gen.DefaultConfig()
	fs := newFlagSet("gen", stderr)
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "random seed; the same seed always writes the same bytes")
	fs.IntVar(&cfg.Events, "events", cfg.Events, "event lines over all partitions, hazards included")
	fs.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "partition files")
	fs.IntVar(&cfg.Workspaces, "workspaces", cfg.Workspaces, "customer workspaces")
	fs.IntVar(&cfg.Days, "days", cfg.Days, "days of event time")
	start := fs.String("start", cfg.Start.Format("2006-01-02"), "first day of event time (UTC)")
	fs.BoolVar(&cfg.Gzip, "gzip", cfg.Gzip, "gzip the event files")
	out := fs.String("out", "sample", "directory to write events-NN.ndjson[.gz] and settings.ndjson into")
	brokers := fs.String("brokers", "", "produce to Kafka instead of files: brokers, comma-separated")
	topic := fs.String("topic", "events", "Kafka mode: the events topic (it must have --partitions partitions)")
	settingsTopic := fs.String("settings-topic", "workspace-settings", "Kafka mode: the compacted settings topic")
	if err := fs.Parse(args); err != nil {
		return err
	}
	t, err := time.Parse("2006-01-02", *start)
	if err != nil {
		return usageErr("--start: want a date like 2026-11-01 (got %q)", *start)
	}
	cfg.Start = t
	if err := cfg.Validate(); err != nil {
		return &exitError{code: 2, err: err}
	}
	began := time.Now()
	if *brokers != "" {
		kc := kafkasrc.DefaultConfig()
		kc.Brokers = strings.Split(*brokers, ",")
		p, err := kafkasrc.NewProducer(kc, *topic, *settingsTopic)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		stats, err := gen.Generate(cfg, p)
		if cerr := p.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "produced %d events to %s (%d partitions) and %d settings records to %s in %s\n",
			stats.Events, *topic, cfg.Partitions, stats.Settings.Lines, *settingsTopic, time.Since(began).Round(time.Millisecond))
		return nil
	}
	stats, err := gen.WriteFiles(*out, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d events in %d partitions and %d settings records to %s/ in %s\n",
		cfg.Events, cfg.Partitions, stats.Settings.Lines, *out, time.Since(began).Round(time.Millisecond))
	return nil
}
