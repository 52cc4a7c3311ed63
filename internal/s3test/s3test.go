package s3test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The variables of scripts/s3-local.sh and scripts/test.sh.
const (
	// EnvEndpoint names the shared server ("http://127.0.0.1:19000").
	EnvEndpoint = "DEID_S3_ENDPOINT"
	// EnvRequire, when set (not "0"), turns a server that cannot be had
	// into a failure instead of a skip.
	EnvRequire = "DEID_REQUIRE_S3"
	// EnvState selects a server's state directory.
	EnvState = "DEID_S3_STATE"
)

// Region is the region the servers sign with.
const Region = "us-east-1"

// Server is a real S3-compatible server on 127.0.0.1.
type Server struct {
	// Endpoint is its base URL, "http://127.0.0.1:PORT".
	Endpoint string
	// AccessKey and SecretKey are its root credentials.
	AccessKey, SecretKey string
	local                *localServer // nil for the shared server
}

// required tells whether DEID_REQUIRE_S3 asks for a server.
func required() bool {
	v := os.Getenv(EnvRequire)
	return v != "" && v != "0"
}

// unavailable skips the test, or fails it when a server is required.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf("s3test: "+format, args...)
	if required() {
		t.Fatalf("%s (%s is set, so this is a failure)", msg, EnvRequire)
	}
	t.Skipf("%s; run the suite with: bash scripts/test.sh", msg)
}

// Require returns the shared server of DEID_S3_ENDPOINT, or, when that is
// not set, a private one as Private starts.
func Require(t testing.TB) *Server {
	t.Helper()
	ep := os.Getenv(EnvEndpoint)
	if ep == "" {
		return Private(t)
	}
	u, err := url.Parse(ep)
	if err != nil || u.Scheme != "http" || (u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost" && u.Hostname() != "::1") {
		t.Fatalf("s3test: %s=%q: tests only talk to a server on 127.0.0.1 (http://127.0.0.1:PORT)", EnvEndpoint, ep)
	}
	s := &Server{Endpoint: ep, AccessKey: os.Getenv("AWS_ACCESS_KEY_ID"), SecretKey: os.Getenv("AWS_SECRET_ACCESS_KEY")}
	if s.AccessKey == "" || s.SecretKey == "" {
		t.Fatalf("s3test: %s is set but AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY is not; use eval \"$(scripts/s3-local.sh env)\"", EnvEndpoint)
	}
	return s
}

// Private starts a server of the test's own through scripts/s3-local.sh,
// with its state (data, metadata, credentials, logs) under the test's
// temporary directory, on the next free port from a random one in
// 19100–19899 (away from the shared server's 19000). Stop and Start take it
// away and bring it back on the same port and data. It is stopped at
// cleanup.
func Private(t testing.TB) *Server {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	sweepOrphans(root)
	var r [4]byte
	rand.Read(r[:])
	l := &localServer{
		script: filepath.Join(root, "scripts", "s3-local.sh"),
		state:  filepath.Join(t.TempDir(), "s3"),
		port:   19100 + int(binary.BigEndian.Uint32(r[:])%800),
	}
	// The owner file lets a later Private stop this server if the test
	// process dies without its cleanup (a go test timeout, a kill).
	owner, err := l.register()
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	// Registered before the start: one that fails half-way is stopped too.
	t.Cleanup(func() {
		if out, err := l.run("stop", false); err != nil {
			t.Errorf("s3test: stopping the private server: %v\n%s", err, out)
		}
		os.Remove(owner)
	})
	if out, err := l.run("start", false); err != nil {
		unavailable(t, "could not start a private S3 server: %v\n%s", err, out)
	}
	s, err := l.server()
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	s.local = l
	return s
}

// Stop stops a private server and waits until its process has exited.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if s.local == nil {
		t.Fatal("s3test: only a private server can be stopped")
	}
	if out, err := s.local.run("stop", false); err != nil {
		t.Fatalf("s3test: stopping the private server: %v\n%s", err, out)
	}
}

// Start starts a stopped private server again on its port, credentials and
// data, and waits until it serves.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if s.local == nil {
		t.Fatal("s3test: only a private server can be started")
	}
	if out, err := s.local.run("start", true); err != nil {
		t.Fatalf("s3test: restarting the private server: %v\n%s", err, out)
	}
}

// Setenv points the standard AWS credential chain at the server for the
// rest of the test: its credentials and region in the environment, no
// shared config or credentials file, no profile, and no instance-metadata
// lookup.
func (s *Server) Setenv(t testing.TB) {
	t.Helper()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           s.AccessKey,
		"AWS_SECRET_ACCESS_KEY":       s.SecretKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  Region,
		"AWS_DEFAULT_REGION":          "",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_ENDPOINT_URL":            "",
		"AWS_ENDPOINT_URL_S3":         "",
	} {
		t.Setenv(k, v)
	}
}

// Client returns an S3 client of the helper's own for the server: static
// credentials, path-style addressing, the SDK's default retries.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// Bucket creates a fresh, empty bucket for the test and returns its name.
func (s *Server) Bucket(t testing.TB) string {
	t.Helper()
	var r [6]byte
	rand.Read(r[:])
	name := "deid-test-" + hex.EncodeToString(r[:])
	if _, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("s3test: creating bucket %s on %s: %v", name, s.Endpoint, err)
	}
	return name
}

// localServer is a server run by scripts/s3-local.sh on a state directory
// of its own.
type localServer struct {
	script string // scripts/s3-local.sh
	state  string // its state directory
	port   int    // its first port to try
}

// run runs the script with a subcommand on the server's state directory;
// keep restarts the server on the state it had.
func (l *localServer) run(cmd string, keep bool) ([]byte, error) {
	c := exec.Command("bash", l.script, cmd)
	k := ""
	if keep {
		k = "1"
	}
	env := make([]string, 0, len(os.Environ())+3)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DEID_S3_") {
			env = append(env, kv)
		}
	}
	c.Env = append(env, EnvState+"="+l.state, "DEID_S3_PORT="+strconv.Itoa(l.port), "DEID_S3_KEEP="+k)
	return c.CombinedOutput()
}

// server reads the running server's port and credentials.
func (l *localServer) server() (*Server, error) {
	port, err := os.ReadFile(filepath.Join(l.state, "port"))
	if err != nil {
		return nil, fmt.Errorf("the private server's port: %w", err)
	}
	f, err := os.Open(filepath.Join(l.state, "credentials"))
	if err != nil {
		return nil, fmt.Errorf("the private server's credentials: %w", err)
	}
	defer f.Close()
	s := &Server{Endpoint: "http://127.0.0.1:" + strings.TrimSpace(string(port))}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "access":
			s.AccessKey = v
		case "secret":
			s.SecretKey = v
		}
	}
	if s.AccessKey == "" || s.SecretKey == "" {
		return nil, errors.New("the private server's credentials file is incomplete")
	}
	return s, nil
}

// ownerDir holds one file per private server: the test process's pid and
// the server's state directory.
func ownerDir() string { return filepath.Join(os.TempDir(), "deid-s3test") }

// register writes the server's owner file and returns its path.
func (l *localServer) register() (string, error) {
	if err := os.MkdirAll(ownerDir(), 0o755); err != nil {
		return "", err
	}
	var r [4]byte
	rand.Read(r[:])
	p := filepath.Join(ownerDir(), fmt.Sprintf("%d-%x", os.Getpid(), r))
	return p, os.WriteFile(p, []byte(l.state), 0o644)
}

// sweepOrphans stops the private servers whose test process has died
// without its cleanup. Servers of running tests are left alone.
func sweepOrphans(root string) {
	owners, _ := os.ReadDir(ownerDir())
	for _, e := range owners {
		pidStr, _, _ := strings.Cut(e.Name(), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err == nil {
			continue
		}
		p := filepath.Join(ownerDir(), e.Name())
		state, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		l := &localServer{script: filepath.Join(root, "scripts", "s3-local.sh"), state: string(state)}
		if _, err := l.run("stop", false); err == nil {
			os.RemoveAll(l.state)
			os.Remove(p)
		}
	}
}

// repoRoot finds the repository from the working directory (a package's
// directory under go test): the first parent holding the script.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "s3-local.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("scripts/s3-local.sh not found above the working directory")
		}
		dir = parent
	}
}
