package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"

	kafka "github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/mya/deid/internal/kafkaconn"
	"github.com/mya/deid/pipeline"
)

// The input's extent, for a job of several instances: which partitions the
// event topics have (from the topic metadata, not from the partitions this
// instance happens to be assigned), how far each reaches, and how far the
// group has committed. Every instance of a bounded job (StopAtEnd) asks
// them to tell when the whole job, not only its own partitions, has read
// to the end. Each retries transient failures within the retry budget and
// blocks until the cluster answers or ctx is done; each is safe for
// concurrent use.

// InputPartitions returns every partition of the event topics in the
// current topic metadata, sorted by topic then partition. A topic that does
// not exist is an error naming it.
func (s *Source) InputPartitions(ctx context.Context) ([]pipeline.PartitionID, error) {
	var out []pipeline.PartitionID
	err := s.retry(ctx, "reading the event topics' metadata failed; retrying", func(ctx context.Context) error {
		var err error
		out, err = s.inputPartitions(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// missingTopicError is a topic the metadata does not know. It wraps no
// kafka.Error, so kafkaconn.Transient does not retry it (Kafka calls
// UnknownTopicOrPartition retriable: a topic may be being created, but one
// nobody creates stays missing).
type missingTopicError struct{ topic, brokers string }

func (e *missingTopicError) Error() string {
	return fmt.Sprintf("the event topic %q does not exist on %s; create it or correct kafka.topics", e.topic, e.brokers)
}

func (s *Source) inputPartitions(ctx context.Context) ([]pipeline.PartitionID, error) {
	md, err := s.client.Metadata(ctx, &kafka.MetadataRequest{Topics: s.cfg.Topics})
	if err != nil {
		return nil, err
	}
	found := map[string]kafka.Topic{}
	for _, t := range md.Topics {
		found[t.Name] = t
	}
	var out []pipeline.PartitionID
	for _, name := range s.cfg.Topics {
		t, ok := found[name]
		if !ok || errors.Is(t.Error, kafka.UnknownTopicOrPartition) || t.Error == nil && len(t.Partitions) == 0 {
			return nil, &missingTopicError{name, addrs(s.cfg.Brokers)}
		}
		if t.Error != nil {
			return nil, fmt.Errorf("event topic %q: %w", name, t.Error)
		}
		for _, p := range t.Partitions {
			out = append(out, pipeline.PartitionID{Source: name, Partition: int32(p.ID)})
		}
	}
	slices.SortFunc(out, comparePartitions)
	return out, nil
}

// EndOffsets returns the high-water mark (the offset the next record will
// get) of every partition of the event topics, as InputPartitions lists
// them.
func (s *Source) EndOffsets(ctx context.Context) (map[pipeline.PartitionID]int64, error) {
	var out map[pipeline.PartitionID]int64
	err := s.retry(ctx, "reading the event topics' high-water marks failed; retrying", func(ctx context.Context) error {
		parts, err := s.inputPartitions(ctx)
		if err != nil {
			return err
		}
		req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
		for _, id := range parts {
			req.Topics[id.Source] = append(req.Topics[id.Source], kafka.LastOffsetOf(int(id.Partition)))
		}
		resp, err := s.client.ListOffsets(ctx, req)
		if err != nil {
			return err
		}
		out = make(map[pipeline.PartitionID]int64, len(parts))
		for topic, offs := range resp.Topics {
			for _, po := range offs {
				id := pipeline.PartitionID{Source: topic, Partition: int32(po.Partition)}
				if po.Error != nil {
					return fmt.Errorf("%s: %w", id, po.Error)
				}
				out[id] = po.LastOffset
			}
		}
		for _, id := range parts {
			if _, ok := out[id]; !ok {
				return fmt.Errorf("%s: no high-water mark in the answer: %w", id, kafka.LeaderNotAvailable)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GroupCommitted returns the group's committed offset of every partition
// of the event topics, as InputPartitions lists them: -1 for a partition
// the group has not committed.
func (s *Source) GroupCommitted(ctx context.Context) (map[pipeline.PartitionID]int64, error) {
	var out map[pipeline.PartitionID]int64
	err := s.retry(ctx, "reading the group's committed offsets failed; retrying", func(ctx context.Context) error {
		parts, err := s.inputPartitions(ctx)
		if err != nil {
			return err
		}
		out = make(map[pipeline.PartitionID]int64, len(parts))
		topics := map[string][]int{}
		for _, id := range parts {
			topics[id.Source] = append(topics[id.Source], int(id.Partition))
			out[id] = -1
		}
		resp, err := s.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: s.cfg.Group, Topics: topics})
		if err == nil {
			err = resp.Error
		}
		if errors.Is(err, kafka.GroupIdNotFound) {
			return nil // a group that has never committed
		}
		if err != nil {
			return err
		}
		for topic, ps := range resp.Topics {
			for _, p := range ps {
				id := pipeline.PartitionID{Source: topic, Partition: int32(p.Partition)}
				if p.Error != nil {
					return fmt.Errorf("%s: %w", id, p.Error)
				}
				if _, ok := out[id]; ok && p.CommittedOffset >= 0 {
					out[id] = p.CommittedOffset
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// retry runs op under kafkaconn.Retry, logging msg before each retry, and
// names the group and brokers in the error after the last attempt.
func (s *Source) retry(ctx context.Context, msg string, op func(context.Context) error) error {
	err := kafkaconn.Retry(ctx, &s.cfg.Config, func(ctx context.Context) error {
		err := op(ctx)
		if err != nil && ctx.Err() == nil && kafkaconn.Transient(err) {
			s.opts.log.Warn(msg, zap.String("group", s.cfg.Group), zap.Error(err))
		}
		return err
	})
	var missing *missingTopicError
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &missing):
		return fmt.Errorf("kafka: %w", err)
	}
	return fmt.Errorf("kafka: the input of group %q on %s: %w", s.cfg.Group, addrs(s.cfg.Brokers), err)
}
