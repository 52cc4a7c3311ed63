package kafkaconn_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/internal/kafkaconn"
)

func TestValidateReportsEveryConnectionProblemByYAMLPath(t *testing.T) {
	tests := []struct {
		name   string
		change func(*kafkaconn.Config)
		want   []string
	}{
		{"the defaults with a broker are valid", func(*kafkaconn.Config) {}, nil},
		{"a broker is required and is host:port", func(c *kafkaconn.Config) { c.Brokers = []string{"kafka"} },
			[]string{`kafka.brokers[0]: "kafka" is not "host:port", e.g. "127.0.0.1:9092"`}},
		{"every problem is reported at once", func(c *kafkaconn.Config) {
			c.Brokers, c.DialTimeout, c.RetryBackoff, c.RetryBackoffMax = nil, 0, 0, -1
			c.TLS.KeyFile = "k.pem"
			c.SASL.Mechanism = "plain"
		}, []string{
			`kafka.brokers: at least one broker is required, e.g. ["127.0.0.1:9092"]`,
			"kafka.dial_timeout: must be positive, e.g. 10s (got 0s)",
			"kafka.retry_backoff: must be positive, e.g. 100ms (got 0s)",
			"kafka.retry_backoff_max: must be at least retry_backoff (0s), e.g. 2s (got -1ns)",
			"kafka.tls: settings are given but TLS is off; set kafka.tls.enabled: true or remove them",
			"kafka.sasl.username: required with a SASL mechanism",
			"kafka.sasl: the password comes from password_env (an environment variable's name) or password_file; set one",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := kafkaconn.DefaultConfig()
			cfg.Brokers = []string{"127.0.0.1:9092"}
			tt.change(&cfg)
			var got []string
			if err := cfg.Validate(); err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConnectNamesTheKeyOfAMissingFile(t *testing.T) {
	cfg := kafkaconn.DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:9092"}
	cfg.SASL = kafkaconn.SASLConfig{Mechanism: kafkaconn.SASLPlain, Username: "deid", PasswordFile: t.TempDir() + "/missing"}
	if _, err := cfg.Transport(); err == nil || !strings.HasPrefix(err.Error(), "kafka.sasl.password_file: open ") {
		t.Errorf("Transport with a missing password file = %v", err)
	}
	cfg.SASL = kafkaconn.SASLConfig{}
	cn, err := cfg.Connect()
	if err != nil {
		t.Fatal(err)
	}
	if cn.Dialer.Timeout != 10*time.Second || cn.Transport.DialTimeout != 10*time.Second || cn.Dialer.DialFunc == nil {
		t.Errorf("Connect = dialer %+v, transport %+v: want the dial timeout and the buffered dial", cn.Dialer, cn.Transport)
	}
}
