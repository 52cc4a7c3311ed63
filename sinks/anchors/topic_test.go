package anchors_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/internal/kafkaconn"
	"github.com/mya/deid/internal/kafkatest"
	"github.com/mya/deid/sinks/anchors"
)

// TestTopicReceivesEveryAnchor produces anchors to a topic and reads them
// back as an anchor log.
func TestTopicReceivesEveryAnchor(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := kafkatest.Name(t, "anchors")
		kafkatest.CreateTopic(t, c.Brokers, topic, 1, false)
		conn := kafkaconn.DefaultConfig()
		conn.Brokers = c.Brokers
		conn.RequestTimeout = 5 * time.Second
		a, err := anchors.NewTopic(conn, topic)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		at := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
		want := []anchors.Line{
			{Kind: anchors.KindChain, Name: "publish", Seq: 1, Event: anchors.EventCommit, SHA256: strings.Repeat("a", 64), Time: at},
			{Kind: anchors.KindDataset, Name: "campaign_metrics", Window: "dt=2026-11-03", Event: anchors.EventCommit,
				SHA256: strings.Repeat("b", 64), Prev: strings.Repeat("c", 64), Time: at},
		}
		ctx, cancel := context.WithTimeout(context.Background(), kafkatest.Timeout)
		defer cancel()
		for _, l := range want {
			if err := a.Anchor(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		var text strings.Builder
		for _, m := range kafkatest.ReadAll(t, c.Brokers, topic) {
			text.Write(m.Value)
			text.WriteByte('\n')
		}
		got, torn, err := anchors.Read(strings.NewReader(text.String()))
		if err != nil || torn {
			t.Fatalf("reading the topic as an anchor log: torn %v, %v", torn, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("anchors on the topic (-want +got):\n%s", diff)
		}
	})
}

func TestNewTopicNeedsTheConnection(t *testing.T) {
	_, err := anchors.NewTopic(kafkaconn.DefaultConfig(), "deid.anchors")
	if err == nil || !strings.Contains(err.Error(), "anchors.topic needs the kafka connection settings") {
		t.Errorf("NewTopic without brokers = %v", err)
	}
}
