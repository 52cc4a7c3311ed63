package kafka_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/mya/deid/internal/kafkaconn"
	"github.com/mya/deid/internal/kafkatest"
	"github.com/mya/deid/pipeline"
	kafkasrc "github.com/mya/deid/sources/kafka"
)

// mixedMessages builds n records of partition 0 as producers write them:
// values of every size from empty to a few KB, tombstones, keys and
// headers, and one value larger than a fetch of fetchMax bytes.
func mixedMessages(n, fetchMax int) []kafkatest.Message {
	rng := rand.New(rand.NewPCG(7, 13))
	msgs := make([]kafkatest.Message, n)
	for i := range msgs {
		m := kafkatest.Message{Value: fmt.Appendf(nil, "v%d-%s", i, strings.Repeat("x", rng.IntN(1500)))}
		switch i % 11 {
		case 3:
			m.Value = nil // a tombstone
		case 5:
			m.Value = []byte{}
		case 7:
			m.Key = fmt.Appendf(nil, "k%d", i)
			m.Headers = []kafkatest.Header{{Key: "h", Value: []byte("hv")}, {Key: "e"}}
		}
		if i == n/2 {
			m.Value = []byte(strings.Repeat("L", 3*fetchMax)) // a batch larger than a fetch
		}
		msgs[i] = m
	}
	return msgs
}

// readBoth reads partition 0 of topic from offset start to the end with
// each record parser and returns what each read, and whether the deid
// parser's reader still made its own fetches at the end.
func readBoth(t *testing.T, c *kafkatest.Cluster, topic string, start int64, fetchMax int) (own, kgo []rec, stillOwn bool) {
	t.Helper()
	for _, parser := range []string{kafkasrc.ParserDeid, kafkasrc.ParserKafkaGo} {
		cfg := testConfig(t, c, topic)
		cfg.Group = kafkatest.Name(t, "group-"+parser)
		cfg.FetchMaxBytes = fetchMax
		cfg.RecordParser = parser
		g := assign(t, newSource(t, cfg, kafkasrc.StopAtEnd()))
		r := open(t, g, func(pipeline.PartitionID) (int64, bool) { return start, true })[0]
		got := readToEOF(t, r)
		if parser == kafkasrc.ParserDeid {
			own, stillOwn = got, kafkasrc.ParsesOwn(r)
		} else {
			kgo = got
		}
	}
	return own, kgo, stillOwn
}

// TestOwnFetchReadsWhatKafkaGoReads holds the reader's own fetch and parser
// to kafka-go's batch API: the same records, offsets and values (a
// tombstone and an empty value both empty), from an offset inside a record
// batch, over fetches that end inside batches and a batch larger than a
// fetch; and topics compressed with each of Kafka's four codecs.
func TestOwnFetchReadsWhatKafkaGoReads(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		const fetchMax = 4096
		msgs := mixedMessages(400, fetchMax)

		t.Run("uncompressed", func(t *testing.T) {
			topic := kafkatest.Name(t, "events")
			kafkatest.CreateTopic(t, c.Brokers, topic, 1, false)
			produced := produceInBatches(t, c.Brokers, topic, msgs, 7)
			start := produced[24].Offset // inside the fourth batch of seven
			own, viaKgo, stillOwn := readBoth(t, c, topic, start, fetchMax)
			want := recsOf(produced[24:])
			if diff := gocmp.Diff(want, viaKgo); diff != "" {
				t.Fatalf("kafka-go's records (-want +got):\n%s", diff)
			}
			if diff := gocmp.Diff(viaKgo, own); diff != "" {
				t.Errorf("the own parser's records against kafka-go's (-kafka-go +own):\n%s", diff)
			}
			if !stillOwn {
				t.Errorf("the reader went over to kafka-go on an uncompressed topic: the own parser was not what read it")
			}
		})

		codecs := map[string]kgo.CompressionCodec{"gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
			"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}
		for name, codec := range codecs {
			t.Run(name, func(t *testing.T) {
				topic := kafkatest.Name(t, "events")
				kafkatest.CreateTopic(t, c.Brokers, topic, 1, false)
				produced := produceInBatchesWith(t, c.Brokers, topic, msgs[:120], 10, kgo.ProducerBatchCompression(codec))
				start := produced[15].Offset // inside the second batch
				own, viaKgo, stillOwn := readBoth(t, c, topic, start, fetchMax)
				if diff := gocmp.Diff(recsOf(produced[15:]), viaKgo); diff != "" {
					t.Fatalf("kafka-go's records (-want +got):\n%s", diff)
				}
				if diff := gocmp.Diff(viaKgo, own); diff != "" {
					t.Errorf("the own parser's records against kafka-go's (-kafka-go +own):\n%s", diff)
				}
				if !stillOwn {
					t.Errorf("the reader went over to kafka-go on a compressed topic: the own parser was not what read it")
				}
			})
		}
	})
}

// TestOwnFetchOverTLSAndSASL reads a topic of a broker that takes TLS and
// SASL only: the reader's own fetches go over the connection kafka-go
// authenticated, which the reader set up TLS for itself.
func TestOwnFetchOverTLSAndSASL(t *testing.T) {
	serverTLS, caFile := selfSigned(t)
	const user, pass = "deid", "s3cret"
	topic := "events"
	c := kafkatest.Fake(t, kfake.TLS(serverTLS), kfake.EnableSASL(), kfake.Superuser("PLAIN", user, pass),
		kfake.SeedTopics(1, topic))
	clientTLS := &tls.Config{RootCAs: serverTLS.ClientCAs, ServerName: "127.0.0.1"}
	produced := produceInBatchesWith(t, c.Brokers, topic, mixedMessages(150, 4096), 9,
		kgo.DialTLSConfig(clientTLS), kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))

	cfg := testConfig(t, c, topic)
	cfg.FetchMaxBytes = 4096
	cfg.TLS = kafkaconn.TLSConfig{Enabled: true, CAFile: caFile}
	cfg.SASL = kafkaconn.SASLConfig{Mechanism: kafkaconn.SASLPlain, Username: user, PasswordEnv: "DEID_TEST_KAFKA_PASSWORD"}
	t.Setenv("DEID_TEST_KAFKA_PASSWORD", pass)
	g := assign(t, newSource(t, cfg, kafkasrc.StopAtEnd()))
	r := open(t, g, nil)[0]
	if diff := gocmp.Diff(recsOf(produced), readToEOF(t, r)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if !kafkasrc.ParsesOwn(r) {
		t.Errorf("the reader went over to kafka-go: the own parser was not what read it")
	}
}

// selfSigned returns a server TLS configuration for 127.0.0.1 with a
// self-signed certificate (its pool in ClientCAs, for the test's clients),
// and the certificate's PEM file.
func selfSigned(t *testing.T) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "deid test broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, ClientCAs: pool}, file
}

// TestAControlBatchSendsTheReaderToKafkaGo reads a topic written in a
// transaction, whose commit marker is a control batch: the own parser
// leaves the partition to kafka-go from there, and both read the same.
func TestAControlBatchSendsTheReaderToKafkaGo(t *testing.T) {
	c := kafkatest.Fake(t)
	topic := kafkatest.Name(t, "events")
	kafkatest.CreateTopic(t, c.Brokers, topic, 1, false)
	produceInBatches(t, c.Brokers, topic, kafkatest.Values(0, "before", 30), 10)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers...), kgo.TransactionalID(kafkatest.Name(t, "tx")),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := ctxT(t)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "in-tx-%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	produceInBatches(t, c.Brokers, topic, kafkatest.Values(0, "after", 30), 10)

	own, viaKgo, stillOwn := readBoth(t, c, topic, 0, 4096)
	if len(viaKgo) < 80 {
		t.Fatalf("kafka-go read %d records, want at least the 80 produced", len(viaKgo))
	}
	if diff := gocmp.Diff(viaKgo, own); diff != "" {
		t.Errorf("the own parser's records against kafka-go's (-kafka-go +own):\n%s", diff)
	}
	if stillOwn {
		t.Errorf("the reader parsed a control batch itself; it leaves them to kafka-go")
	}
}
