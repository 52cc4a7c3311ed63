package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binOut  []byte
	binDir  string
)

// TestMain removes the deid binary built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// repoRoot is deid's repository, the parent of this module.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.HasPrefix(b, []byte("module github.com/mya/deid\n")) {
		t.Fatalf("%s is not deid's repository (go.mod: %v)", root, err)
	}
	return root
}

// deidBinary builds ./cmd/deid of the repository once for this test binary.
func deidBinary(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "deid-deploy-test-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "deid")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/deid")
		cmd.Dir = root
		binOut, binErr = cmd.CombinedOutput()
	})
	if binErr != nil {
		t.Fatalf("go build ./cmd/deid: %v\n%s", binErr, binOut)
	}
	return binPath
}

// configMapConfig returns the deid.yaml of k8s/configmap.yaml.
func configMapConfig(t *testing.T) []byte {
	t.Helper()
	ms, err := readManifests(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if cm, ok := m.obj.(*corev1.ConfigMap); ok {
			if s, ok := cm.Data["deid.yaml"]; ok {
				return []byte(s)
			}
		}
	}
	t.Fatal("no ConfigMap with deid.yaml under k8s/")
	return nil
}

// checkConfig runs `deid run --config FILE --check` on b.
func checkConfig(t *testing.T, b []byte) (string, error) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "deid.yaml")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(deidBinary(t), "run", "--config", f, "--check").CombinedOutput()
	return string(out), err
}

func TestDeidAcceptsTheShippedConfigs(t *testing.T) {
	compose, err := os.ReadFile("deid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cfg  []byte
	}{
		{"the compose file's deid.yaml", compose},
		{"the ConfigMap's deid.yaml", configMapConfig(t)},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := checkConfig(t, c.cfg)
			if err != nil || !strings.Contains(out, "configuration is valid") {
				t.Errorf("deid run --check: %v\n%s", err, out)
			}
		})
	}
}

func TestDeidRefusesABrokenConfigInTheConfigMap(t *testing.T) {
	cfg := configMapConfig(t)
	cases := []struct {
		name, old, new, want string
	}{
		{"a misspelled key", "settings_topic:", "setings_topic:", "setings_topic"},
		{"Kafka mode without a state directory", "state_dir: s3://deid-training/job/state", "state_dir: \"\"", "state_dir"},
		{"several instances on one machine's directory", "state_dir: s3://deid-training/job/state", "state_dir: /var/lib/deid", "kafka.scale_out needs it on object storage"},
		{"an output that is not an s3:// URL", "out: s3://deid-training/job/out", "out: s4://deid-training/job/out", "out"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !bytes.Contains(cfg, []byte(c.old)) {
				t.Fatalf("the ConfigMap's deid.yaml does not contain %q: the case no longer edits anything", c.old)
			}
			out, err := checkConfig(t, bytes.Replace(cfg, []byte(c.old), []byte(c.new), 1))
			if err == nil {
				t.Fatalf("deid run --check accepted it:\n%s", out)
			}
			if !strings.Contains(out, c.want) {
				t.Errorf("deid run --check: %v\n%s\nwant a message containing %q", err, out, c.want)
			}
			t.Logf("refused as it should be:\n%s", out)
		})
	}
}
