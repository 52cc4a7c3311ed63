package kafka_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/mya/deid/internal/kafkaconn"
	kafkasrc "github.com/mya/deid/sources/kafka"
)

func validConfig() kafkasrc.Config {
	cfg := kafkasrc.DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:9092"}
	return cfg
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name   string
		change func(*kafkasrc.Config)
		want   []string
	}{
		{"the defaults with a broker are valid", func(*kafkasrc.Config) {}, nil},
		{"a broker is required", func(c *kafkasrc.Config) { c.Brokers = nil },
			[]string{`kafka.brokers: at least one broker is required, e.g. ["127.0.0.1:9092"]`}},
		{"a broker is host:port", func(c *kafkasrc.Config) { c.Brokers = []string{"127.0.0.1:9092", "kafka"} },
			[]string{`kafka.brokers[1]: "kafka" is not "host:port", e.g. "127.0.0.1:9092"`}},
		{"a topic is required", func(c *kafkasrc.Config) { c.Topics = nil },
			[]string{`kafka.topics: at least one event topic is required, e.g. ["events"]`}},
		{"topic names follow Kafka's rules and are listed once", func(c *kafkasrc.Config) { c.Topics = []string{"events", "a b", "events"} },
			[]string{
				`kafka.topics[1]: topic name "a b" may only contain ASCII letters, digits, '.', '_' and '-'`,
				`kafka.topics[2]: "events" is listed twice; list each topic once`,
			}},
		{"a group is required", func(c *kafkasrc.Config) { c.Group = "" },
			[]string{`kafka.group: a consumer group id is required, e.g. "deid"`}},
		{"fetch sizes are bounded and ordered", func(c *kafkasrc.Config) { c.FetchMinBytes, c.FetchMaxBytes = 0, 10 },
			[]string{
				"kafka.fetch_min_bytes: must be at least 1 (got 0)",
				"kafka.fetch_max_bytes: must be between 1024 and 1073741824, e.g. 1048576 (got 10)",
			}},
		{"fetch_min_bytes does not exceed fetch_max_bytes", func(c *kafkasrc.Config) { c.FetchMinBytes = 2 << 20 },
			[]string{"kafka.fetch_min_bytes: must not exceed fetch_max_bytes (2097152 > 1048576)"}},
		{"timeouts are positive and in range", func(c *kafkasrc.Config) {
			c.FetchMaxWait, c.SessionTimeout, c.RebalanceTimeout, c.DialTimeout, c.RequestTimeout = 0, time.Hour, 0, 0, -1
		}, []string{
			"kafka.dial_timeout: must be positive, e.g. 10s (got 0s)",
			"kafka.request_timeout: must be positive, e.g. 10s (got -1ns)",
			"kafka.fetch_max_wait: must be between 1ms and 1m, e.g. 500ms (got 0s)",
			"kafka.session_timeout: must be between 1s and 5m, e.g. 30s (got 1h0m0s)",
			"kafka.rebalance_timeout: must be at least 1s, e.g. 30s (got 0s)",
		}},
		{"start, offset_out_of_range and record_parser are closed sets", func(c *kafkasrc.Config) {
			c.Start, c.OffsetOutOfRange, c.RecordParser = "beginning", "skip", "sarama"
		},
			[]string{
				`kafka.record_parser: must be "deid" or "kafka-go" (got "sarama")`,
				`kafka.offset_out_of_range: must be "fail", "earliest" or "latest" (got "skip")`,
				`kafka.start: must be "earliest" or "latest" (got "beginning")`,
			}},
		{"retries back off and have a budget", func(c *kafkasrc.Config) {
			c.RetryBackoff, c.RetryBackoffMax, c.RetryBudget = time.Second, time.Millisecond, -1
		},
			[]string{
				"kafka.retry_backoff_max: must be at least retry_backoff (1s), e.g. 2s (got 1ms)",
				"kafka.retry_budget: must not be negative, e.g. 1m (got -1ns)",
			}},
		{"TLS settings need TLS on", func(c *kafkasrc.Config) { c.TLS.CAFile = "ca.pem" },
			[]string{"kafka.tls: settings are given but TLS is off; set kafka.tls.enabled: true or remove them"}},
		{"a client certificate needs its key", func(c *kafkasrc.Config) { c.TLS = kafkaconn.TLSConfig{Enabled: true, CertFile: "c.pem"} },
			[]string{"kafka.tls: cert_file and key_file go together; set both for mutual TLS, or neither"}},
		{"SASL needs a known mechanism, a user and one password source", func(c *kafkasrc.Config) {
			c.SASL = kafkaconn.SASLConfig{Mechanism: "gssapi"}
		}, []string{
			`kafka.sasl.mechanism: must be "plain", "scram-sha-256" or "scram-sha-512" (got "gssapi")`,
			"kafka.sasl.username: required with a SASL mechanism",
			"kafka.sasl: the password comes from password_env (an environment variable's name) or password_file; set one",
		}},
		{"SASL takes one password source", func(c *kafkasrc.Config) {
			c.SASL = kafkaconn.SASLConfig{Mechanism: "scram-sha-512", Username: "deid", PasswordEnv: "P", PasswordFile: "p"}
		}, []string{"kafka.sasl: set password_env or password_file, not both"}},
		{"SASL credentials need a mechanism", func(c *kafkasrc.Config) { c.SASL.Username = "deid" },
			[]string{`kafka.sasl.mechanism: must be set when SASL credentials are given: "plain", "scram-sha-256" or "scram-sha-512"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.change(&cfg)
			var got []string
			if err := cfg.Validate(); err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if diff := gocmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
			if len(tt.want) > 0 {
				if _, err := kafkasrc.New(cfg); err == nil {
					t.Error("New accepted an invalid configuration")
				}
			}
		})
	}
}

func TestConfigDecodesFromYAMLStrictly(t *testing.T) {
	src := `
brokers: ["127.0.0.1:19092"]
topics: [events, events-eu]
group: deid-prod
client_id: deid-1
tls: {enabled: true, ca_file: /etc/ca.pem}
sasl: {mechanism: scram-sha-512, username: deid, password_env: DEID_KAFKA_PASSWORD}
fetch_max_bytes: 4194304
fetch_max_wait: 250ms
session_timeout: 45s
start: latest
offset_out_of_range: fail
record_parser: kafka-go
retry_budget: 2m
`
	cfg := kafkasrc.DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if cfg.SessionTimeout != 45*time.Second || cfg.FetchMaxWait != 250*time.Millisecond || cfg.SASL.PasswordEnv != "DEID_KAFKA_PASSWORD" ||
		cfg.ClientID != "deid-1" || cfg.RetryBudget != 2*time.Minute || cfg.TLS.CAFile != "/etc/ca.pem" || cfg.Brokers[0] != "127.0.0.1:19092" ||
		cfg.RecordParser != kafkasrc.ParserKafkaGo {
		t.Errorf("decoded %+v", cfg)
	}
	// There is no key for an inline password: secrets never sit in the file.
	dec = yaml.NewDecoder(strings.NewReader("sasl: {mechanism: plain, username: u, password: hunter2}\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err == nil || !strings.Contains(err.Error(), "field password not found") {
		t.Errorf("decoding an inline password = %v, want an unknown-field error", err)
	}
}

func TestNewReadsTheSecretsAndNeverShowsThem(t *testing.T) {
	const secret = "s3cret-password"
	cfg := validConfig()
	cfg.SASL = kafkaconn.SASLConfig{Mechanism: kafkaconn.SASLSCRAMSHA256, Username: "deid", PasswordEnv: "DEID_TEST_KAFKA_PASSWORD"}
	t.Setenv("DEID_TEST_KAFKA_PASSWORD", "")
	if _, err := kafkasrc.New(cfg); err == nil || err.Error() != "kafka.sasl.password_env: the environment variable DEID_TEST_KAFKA_PASSWORD is not set or empty" {
		t.Errorf("New without the password = %v", err)
	}
	t.Setenv("DEID_TEST_KAFKA_PASSWORD", secret)
	if _, err := kafkasrc.New(cfg); err != nil {
		t.Errorf("New: %v", err)
	}

	file := filepath.Join(t.TempDir(), "password")
	cfg.SASL = kafkaconn.SASLConfig{Mechanism: kafkaconn.SASLPlain, Username: "deid", PasswordFile: file}
	if _, err := kafkasrc.New(cfg); err == nil || !strings.HasPrefix(err.Error(), "kafka.sasl.password_file: open ") {
		t.Errorf("New with a missing password file = %v", err)
	}
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := kafkasrc.New(cfg); err != nil {
		t.Errorf("New: %v", err)
	}
	if s := fmt.Sprintf("%+v", cfg); strings.Contains(s, secret) {
		t.Errorf("the configuration shows the password: %s", s)
	}

	cfg.SASL = kafkaconn.SASLConfig{}
	cfg.TLS = kafkaconn.TLSConfig{Enabled: true, CAFile: filepath.Join(t.TempDir(), "missing.pem")}
	if _, err := kafkasrc.New(cfg); err == nil || !strings.HasPrefix(err.Error(), "kafka.tls.ca_file: open ") {
		t.Errorf("New with a missing CA file = %v", err)
	}
}
