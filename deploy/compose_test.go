package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	yamlv3 "go.yaml.in/yaml/v3"
)

// composeSchema compiles the compose specification's JSON schema, vendored
// in schema/ (see schema/README.md).
func composeSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("schema/compose-spec.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("schema/compose-spec.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("compose-spec.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("compose-spec.json")
	if err != nil {
		t.Fatalf("compiling the compose schema: %v", err)
	}
	return s
}

// composeFile is the part of compose.yaml the checks below read.
type composeFile struct {
	Services map[string]struct {
		Image     string         `yaml:"image"`
		Command   []string       `yaml:"command"`
		Profiles  []string       `yaml:"profiles"`
		DependsOn map[string]any `yaml:"depends_on"`
		Volumes   []string       `yaml:"volumes"`
		Ports     []string       `yaml:"ports"`
		Scale     *int           `yaml:"scale"`
		Deploy    struct {
			Replicas *int `yaml:"replicas"`
		} `yaml:"deploy"`
		StopGracePeriod string `yaml:"stop_grace_period"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// validateCompose checks a compose file against the specification's schema
// (decoded as YAML 1.2, as compose reads it; a duplicate key is an error),
// then what the schema cannot see: names that refer to each other, one deid
// instance, deid's config file and port.
func validateCompose(schema *jsonschema.Schema, b []byte) []error {
	var doc any
	if err := yamlv3.Unmarshal(b, &doc); err != nil {
		return []error{fmt.Errorf("compose.yaml: %w", err)}
	}
	// Through JSON, as the schema library takes it (numbers as json.Number).
	j, err := json.Marshal(doc)
	if err != nil {
		return []error{fmt.Errorf("compose.yaml: %w", err)}
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		return []error{err}
	}
	if err := schema.Validate(inst); err != nil {
		return []error{fmt.Errorf("compose.yaml does not follow the compose specification: %w", err)}
	}

	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	var cf composeFile
	if err := yamlv3.Unmarshal(b, &cf); err != nil {
		return []error{fmt.Errorf("compose.yaml: %w", err)}
	}
	for name, s := range cf.Services {
		for dep := range s.DependsOn {
			if _, ok := cf.Services[dep]; !ok {
				fail("services.%s.depends_on: no service %q", name, dep)
			}
		}
		for _, v := range s.Volumes {
			src := strings.SplitN(v, ":", 2)[0]
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				continue // a bind mount; checked below for deid's config
			}
			if _, ok := cf.Volumes[src]; !ok {
				fail("services.%s.volumes: no top-level volume %q", name, src)
			}
		}
	}
	deid, ok := cf.Services["deid"]
	if !ok {
		fail("no service deid")
		return errs
	}
	if deid.Deploy.Replicas == nil || *deid.Deploy.Replicas != 1 || (deid.Scale != nil && *deid.Scale != 1) {
		fail("services.deid: deploy.replicas must be 1 (and scale unset or 1): deid runs one instance per job with state and output on volumes (several need kafka.scale_out with both on s3://)")
	}
	if len(deid.Profiles) > 0 {
		fail("services.deid: in profiles %v, so a plain `up` would not start it", deid.Profiles)
	}
	// The config file mounted where the command reads it, and its port published.
	cfgPath := ""
	for i, a := range deid.Command {
		if a == "--config" && i+1 < len(deid.Command) {
			cfgPath = deid.Command[i+1]
		}
	}
	mounted := ""
	for _, v := range deid.Volumes {
		p := strings.Split(v, ":")
		if len(p) >= 2 && p[1] == cfgPath {
			mounted = p[0]
		}
	}
	if cfgPath == "" || mounted == "" {
		fail("services.deid: the command's --config %q is not a mounted file", cfgPath)
		return errs
	}
	cb, err := os.ReadFile(mounted)
	if err != nil {
		fail("services.deid: %v", err)
		return errs
	}
	var cfg deidConfig
	if err := yamlv3.Unmarshal(cb, &struct {
		HTTPAddr *string `yaml:"http_addr"`
	}{&cfg.HTTPAddr}); err != nil {
		fail("%s: %v", mounted, err)
	}
	_, port, err := splitPort(cfg.HTTPAddr)
	if err != nil {
		fail("%s http_addr: %v", mounted, err)
	} else if !slices.ContainsFunc(deid.Ports, func(p string) bool { return strings.HasSuffix(p, fmt.Sprintf(":%d", port)) }) {
		fail("services.deid.ports %v do not publish http_addr's port %d", deid.Ports, port)
	}
	errs = append(errs, checkTopics(cf.Services["kafka-init"].Command, cf.Services["gen"].Command, cb)...)
	if g, err := time.ParseDuration(deid.StopGracePeriod); err != nil || g <= 30*time.Second {
		fail("services.deid.stop_grace_period %q must exceed deid's shutdown_timeout (30s), so a stop checkpoints", deid.StopGracePeriod)
	}
	return errs
}

// checkTopics checks that kafka-init's script creates every topic deid's
// config names (deid never creates topics), and the events topic with the
// partitions gen produces to.
func checkTopics(initCmd, genCmd []string, deidYAML []byte) []error {
	var errs []error
	var cfg struct {
		Kafka struct {
			Topics []string `yaml:"topics"`
			Group  string   `yaml:"group"`
		} `yaml:"kafka"`
		SettingsTopic string `yaml:"settings_topic"`
		DeadLetters   struct {
			Topic string `yaml:"topic"`
		} `yaml:"dead_letters"`
		Anchors struct {
			Topic string `yaml:"topic"`
		} `yaml:"anchors"`
	}
	if err := yamlv3.Unmarshal(deidYAML, &cfg); err != nil {
		return []error{fmt.Errorf("deid.yaml: %w", err)}
	}
	created := map[string]string{} // topic → its partitions
	for _, m := range regexp.MustCompile(`--topic (\S+) --partitions (\d+)`).FindAllStringSubmatch(strings.Join(initCmd, "\n"), -1) {
		created[m[1]] = m[2]
	}
	dlq := cfg.DeadLetters.Topic
	if dlq == "" {
		dlq = cfg.Kafka.Group + ".dead-letters"
	}
	for _, topic := range append(slices.Clone(cfg.Kafka.Topics), cfg.SettingsTopic, dlq, cfg.Anchors.Topic) {
		if _, ok := created[topic]; topic != "" && !ok {
			errs = append(errs, fmt.Errorf("services.kafka-init does not create the topic %q that deid.yaml names (have %v); deid never creates topics", topic, created))
		}
	}
	flag := func(cmd []string, name string) string {
		for i, a := range cmd {
			if a == name && i+1 < len(cmd) {
				return cmd[i+1]
			}
		}
		return ""
	}
	if topic := flag(genCmd, "--topic"); created[topic] != flag(genCmd, "--partitions") {
		errs = append(errs, fmt.Errorf("services.gen produces to %q in %s partitions, but kafka-init creates it with %q", topic, flag(genCmd, "--partitions"), created[topic]))
	}
	return errs
}

func TestComposeFileFollowsTheSpecification(t *testing.T) {
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range validateCompose(composeSchema(t), b) {
		t.Error(e)
	}
}

func TestABrokenComposeFileFailsTheChecks(t *testing.T) {
	schema := composeSchema(t)
	orig, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, old, new string
		want           string
	}{
		{"a misspelled service key is refused", "    pull_policy: never\n    depends_on:\n      kafka-init:\n        condition: service_completed_successfully\n    command: [\"run\"", "    pull_polcy: never\n    depends_on:\n      kafka-init:\n        condition: service_completed_successfully\n    command: [\"run\"", "pull_polcy"},
		{"a misspelled top-level key is refused", "\nvolumes:\n  kafka: {}", "\nvolume:\n  kafka: {}", "volume"},
		{"a value of the wrong type is refused", "      replicas: 1", "      replicas: [1]", "replicas"},
		{"a malformed duration is refused", "stop_grace_period: 45s", "stop_grace_period: 45 seconds", `stop_grace_period "45 seconds"`},
		{"a duplicate key is refused", "    stop_grace_period: 45s\n", "    stop_grace_period: 45s\n    stop_grace_period: 50s\n", "already defined"},
		{"a second deid replica of this config is refused", "      replicas: 1", "      replicas: 3", "one instance per job"},
		{"a dependency on a service that does not exist is refused", "      kafka:\n        condition: service_healthy", "      kafak:\n        condition: service_healthy", `no service "kafak"`},
		{"a volume that is not declared is refused", "      - state:/var/lib/deid", "      - stat:/var/lib/deid", `no top-level volume "stat"`},
		{"a stop grace period shorter than the shutdown timeout is refused", "stop_grace_period: 45s", "stop_grace_period: 10s", "shutdown_timeout"},
		{"a topic deid reads that is not created is refused", "$$t --topic workspace-settings", "$$t --topic workspace-setting", `topic "workspace-settings"`},
		{"an anchor topic that is not created is refused", "$$t --topic deid.anchors", "# no anchor topic", `topic "deid.anchors"`},
		{"a sample in more partitions than the topic has is refused", `"--partitions", "4"`, `"--partitions", "6"`, "in 6 partitions"},
		{"an unpublished metrics port is refused", `"127.0.0.1:9090:9090"`, `"127.0.0.1:9091:9091"`, "do not publish"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !bytes.Contains(orig, []byte(c.old)) {
				t.Fatalf("compose.yaml does not contain %q: the case no longer edits anything", c.old)
			}
			b := bytes.Replace(orig, []byte(c.old), []byte(c.new), 1)
			errs := validateCompose(schema, b)
			if len(errs) == 0 {
				t.Fatalf("no error; want one containing %q", c.want)
			}
			var all []string
			for _, e := range errs {
				all = append(all, e.Error())
			}
			msg := strings.Join(all, "\n")
			if !strings.Contains(msg, c.want) {
				t.Errorf("errors:\n%s\nwant one containing %q", msg, c.want)
			}
			t.Logf("refused as it should be:\n%s", msg)
		})
	}
}

// The versions the compose file runs are those the test suite runs.
func TestComposeRunsTheVersionsTheTestsRun(t *testing.T) {
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ script, pattern, image string }{
		{"../scripts/kafka-local.sh", `DEID_KAFKA_VERSION:-([0-9.]+)\}`, "apache/kafka:%s"},
		{"../scripts/s3-local.sh", `DEID_S3_VERSION:-(v[0-9.]+)\}`, "versity/versitygw:%s"},
	} {
		s, err := os.ReadFile(c.script)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(c.pattern).FindSubmatch(s)
		if m == nil {
			t.Fatalf("%s: no default version matching %s", c.script, c.pattern)
		}
		want := "image: " + fmt.Sprintf(c.image, m[1])
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("compose.yaml has no %q, the version %s runs", want, c.script)
		}
	}
}

// The vendored schema is the one schema/README.md names, unchanged.
func TestVendoredComposeSchemaIsTheOneNamed(t *testing.T) {
	readme, err := os.ReadFile("schema/README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("SHA-256 `([0-9a-f]{64})`").FindSubmatch(readme)
	if m == nil {
		t.Fatal("schema/README.md names no SHA-256")
	}
	b, err := os.ReadFile("schema/compose-spec.json")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%x", sha256.Sum256(b)); got != string(m[1]) {
		t.Errorf("schema/compose-spec.json has SHA-256 %s; schema/README.md names %s: copy the file unchanged, or update the README with its version", got, m[1])
	}
}
