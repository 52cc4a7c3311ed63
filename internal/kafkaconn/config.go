package kafkaconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/mya/deid/internal/backoff"
)

// SASL mechanisms a Config accepts.
const (
	SASLPlain       = "plain"
	SASLSCRAMSHA256 = "scram-sha-256"
	SASLSCRAMSHA512 = "scram-sha-512"
)

// Config is the connection to Kafka every client of deid shares: the
// brokers, the client id, TLS, SASL, the timeouts and the retry rhythm. It
// is part of the `kafka:` section of deid's configuration; the consumer
// group's settings (sources/kafka) sit beside it in the same section.
type Config struct {
	// Brokers are the bootstrap brokers, "host:port".
	Brokers []string `yaml:"brokers"`
	// ClientID names this client in the brokers' logs and metrics.
	ClientID string     `yaml:"client_id"`
	TLS      TLSConfig  `yaml:"tls"`
	SASL     SASLConfig `yaml:"sasl"`

	// DialTimeout bounds connecting (TCP, TLS and SASL) to a broker.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// RequestTimeout is how long to wait for a broker's answer (beyond
	// the fetch wait for a fetch) before the connection counts as broken.
	RequestTimeout time.Duration `yaml:"request_timeout"`

	// Settings are the retries after a transient failure (a leader
	// change, a broker restart, a reset connection): RetryBackoff,
	// RetryBackoffMax, and RetryBudget, how long a partition (or the
	// group, or a producer) may keep failing before the failure is
	// returned as an error instead of retried.
	backoff.Settings `yaml:",inline"`
}

// TLSConfig configures TLS to the brokers.
type TLSConfig struct {
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of the CAs to trust instead of the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// mutual TLS; both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// InsecureSkipVerify disables the verification of the brokers'
	// certificates. For tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// SASLConfig configures SASL authentication. The password never appears in
// the configuration itself: it is read from an environment variable or a
// file, and is never logged.
type SASLConfig struct {
	// Mechanism is "plain", "scram-sha-256" or "scram-sha-512"; empty
	// disables SASL.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// PasswordEnv names the environment variable holding the password.
	PasswordEnv string `yaml:"password_env"`
	// PasswordFile is a file holding the password (trailing newlines are
	// ignored).
	PasswordFile string `yaml:"password_file"`
}

// DefaultConfig returns the defaults: client id "deid", 10s to connect and
// to answer, and retries backing off from 100ms to 2s for up to a minute.
// Brokers must be set.
func DefaultConfig() Config {
	return Config{
		ClientID:       "deid",
		DialTimeout:    10 * time.Second,
		RequestTimeout: 10 * time.Second,
		Settings: backoff.Settings{
			RetryBackoff:    100 * time.Millisecond,
			RetryBackoffMax: 2 * time.Second,
			RetryBudget:     time.Minute,
		},
	}
}

// Validate reports every problem, each prefixed with its YAML path. It
// checks the configuration only: it neither connects nor reads the secret
// or certificate files (Connect and Transport do).
func (c Config) Validate() error { return errors.Join(c.problems()...) }

func (c Config) problems() []error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New(`kafka.brokers: at least one broker is required, e.g. ["127.0.0.1:9092"]`))
	}
	for i, b := range c.Brokers {
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf(`kafka.brokers[%d]: %q is not "host:port", e.g. "127.0.0.1:9092"`, i, b))
		}
	}
	if c.DialTimeout <= 0 {
		errs = append(errs, fmt.Errorf("kafka.dial_timeout: must be positive, e.g. 10s (got %s)", c.DialTimeout))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("kafka.request_timeout: must be positive, e.g. 10s (got %s)", c.RequestTimeout))
	}
	errs = append(errs, c.Settings.Problems("kafka", "2s")...)
	errs = append(errs, c.TLS.validate()...)
	errs = append(errs, c.SASL.validate()...)
	return errs
}

func (t TLSConfig) validate() []error {
	var errs []error
	if !t.Enabled {
		if t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.InsecureSkipVerify {
			errs = append(errs, errors.New("kafka.tls: settings are given but TLS is off; set kafka.tls.enabled: true or remove them"))
		}
		return errs
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, errors.New("kafka.tls: cert_file and key_file go together; set both for mutual TLS, or neither"))
	}
	return errs
}

func (s SASLConfig) validate() []error {
	var errs []error
	switch s.Mechanism {
	case "":
		if s.Username != "" || s.PasswordEnv != "" || s.PasswordFile != "" {
			errs = append(errs, fmt.Errorf("kafka.sasl.mechanism: must be set when SASL credentials are given: %q, %q or %q",
				SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512))
		}
		return errs
	case SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512:
	default:
		errs = append(errs, fmt.Errorf("kafka.sasl.mechanism: must be %q, %q or %q (got %q)",
			SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512, s.Mechanism))
	}
	if s.Username == "" {
		errs = append(errs, errors.New("kafka.sasl.username: required with a SASL mechanism"))
	}
	switch {
	case s.PasswordEnv == "" && s.PasswordFile == "":
		errs = append(errs, errors.New("kafka.sasl: the password comes from password_env (an environment variable's name) or password_file; set one"))
	case s.PasswordEnv != "" && s.PasswordFile != "":
		errs = append(errs, errors.New("kafka.sasl: set password_env or password_file, not both"))
	}
	return errs
}

// Conn is what every client of deid needs to talk to the brokers: a Dialer
// for partition connections and a Transport for request/response clients,
// both with the configured TLS and SASL.
type Conn struct {
	Dialer    *kafka.Dialer
	Transport *kafka.Transport
}

// Connect builds the dialer and transport, reading the TLS files and the
// SASL password. Errors name the configuration key to fix. It does not
// connect: kafka-go dials on first use.
func (c Config) Connect() (*Conn, error) {
	tlsCfg, err := c.TLS.load()
	if err != nil {
		return nil, err
	}
	mech, err := c.SASL.mechanism()
	if err != nil {
		return nil, err
	}
	d := &kafka.Dialer{
		ClientID:      c.ClientID,
		Timeout:       c.DialTimeout,
		DialFunc:      BufferedDial(30 * time.Second),
		TLS:           tlsCfg,
		SASLMechanism: mech,
	}
	t := &kafka.Transport{
		DialTimeout: c.DialTimeout,
		ClientID:    c.ClientID,
		TLS:         tlsCfg,
		SASL:        mech,
		IdleTimeout: 30 * time.Second,
		MetadataTTL: 5 * time.Second,
	}
	return &Conn{Dialer: d, Transport: t}, nil
}

func (t TLSConfig) load() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	// InsecureSkipVerify is an explicit opt-in, for tests.
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka.tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.cert_file, key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// mechanism reads the password and builds the SASL mechanism. The password
// lives only inside the mechanism; no error message ever includes it.
func (s SASLConfig) mechanism() (sasl.Mechanism, error) {
	if s.Mechanism == "" {
		return nil, nil
	}
	var password string
	switch {
	case s.PasswordEnv != "":
		v, ok := os.LookupEnv(s.PasswordEnv)
		if !ok || v == "" {
			return nil, fmt.Errorf("kafka.sasl.password_env: the environment variable %s is not set or empty", s.PasswordEnv)
		}
		password = v
	default:
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.sasl.password_file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
		if password == "" {
			return nil, fmt.Errorf("kafka.sasl.password_file: %s is empty", s.PasswordFile)
		}
	}
	switch s.Mechanism {
	case SASLPlain:
		return plain.Mechanism{Username: s.Username, Password: password}, nil
	case SASLSCRAMSHA256:
		m, err := scram.Mechanism(scram.SHA256, s.Username, password)
		if err != nil {
			return nil, fmt.Errorf("kafka.sasl: %w", err)
		}
		return m, nil
	case SASLSCRAMSHA512:
		m, err := scram.Mechanism(scram.SHA512, s.Username, password)
		if err != nil {
			return nil, fmt.Errorf("kafka.sasl: %w", err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("kafka.sasl.mechanism: unknown mechanism %q", s.Mechanism)
}

// Transport returns a kafka-go Transport with the configured TLS, SASL and
// timeouts, for request/response clients and Writers. It reads the TLS
// files and the SASL password; errors name the key to fix.
func (c Config) Transport() (*kafka.Transport, error) {
	cn, err := c.Connect()
	if err != nil {
		return nil, err
	}
	return cn.Transport, nil
}
