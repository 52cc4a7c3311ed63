package kafkaconn

import (
	"context"
	"errors"
	"fmt"
	"strings"

	kafka "github.com/segmentio/kafka-go"
)

// CheckPartialsTopic fails when the partials topic of a job of several
// instances does not exist, saying how to create it; transient failures
// are retried within the budget. The close-record sink and the publisher
// group's reader both check it before anything runs.
func CheckPartialsTopic(ctx context.Context, cfg *Config, client *kafka.Client, topic string) error {
	missing := false
	err := Retry(ctx, cfg, func(ctx context.Context) error {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			return err
		}
		for _, t := range md.Topics {
			if t.Name != topic {
				continue
			}
			// UnknownTopicOrPartition is retriable to Kafka (a topic
			// being created), but a topic nobody created stays missing.
			missing = errors.Is(t.Error, kafka.UnknownTopicOrPartition) || t.Error == nil && len(t.Partitions) == 0
			if missing {
				return nil
			}
			return t.Error
		}
		missing = true
		return nil
	})
	brokers := strings.Join(cfg.Brokers, ",")
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		return fmt.Errorf("kafka: looking up the partials topic %q on %s: %w", topic, brokers, err)
	}
	if missing {
		return fmt.Errorf("kafka: the partials topic %q does not exist on %s; create it like every topic "+
			"(kafka-topics.sh --bootstrap-server %s --create --topic %s --partitions 1 --replication-factor 3) or set kafka.partials_topic",
			topic, brokers, brokers, topic)
	}
	return nil
}
