package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
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
// then what the schema cannot see: names that refer to each other, deid's
// config file (read by readFile) and port, and that the config can run as
// many instances as the service has replicas, with its topics and bucket
// created.
func validateCompose(schema *jsonschema.Schema, b []byte, readFile func(string) ([]byte, error)) []error {
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
	replicas := 1
	if deid.Deploy.Replicas != nil {
		replicas = *deid.Deploy.Replicas
	}
	if deid.Scale != nil {
		replicas = *deid.Scale
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
	cb, err := readFile(mounted)
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
	} else if hostPorts := publishedPorts(deid.Ports, port); hostPorts == 0 {
		fail("services.deid.ports %v do not publish http_addr's port %d", deid.Ports, port)
	} else if hostPorts < replicas {
		fail("services.deid.ports %v publish port %d on %d host ports for %d replicas: give each instance one (a range such as 9090-%d)", deid.Ports, port, hostPorts, replicas, 9090+replicas-1)
	}
	job, err := readJob(cb)
	if err != nil {
		fail("%s: %v", mounted, err)
		return errs
	}
	errs = append(errs, job.checkInstances("services.deid", replicas)...)
	if !job.shared() {
		// One process owns state and output: they must be on volumes.
		for _, d := range []struct{ key, path string }{{"state_dir", job.StateDir}, {"out", job.Out}} {
			if !slices.ContainsFunc(deid.Volumes, func(v string) bool {
				p := strings.Split(v, ":")
				return len(p) >= 2 && (p[1] == d.path || p[1] == filepath.Dir(d.path))
			}) {
				fail("%s %s: %q is on no volume of services.deid, so it is lost with the container", mounted, d.key, d.path)
			}
		}
	}
	if job.usesS3() {
		errs = append(errs, checkBucket(cf, job)...)
	}
	errs = append(errs, checkTopics(cf.Services["kafka-init"].Command, cf.Services["gen"].Command, job, replicas)...)
	if g, err := time.ParseDuration(deid.StopGracePeriod); err != nil || g <= 30*time.Second {
		fail("services.deid.stop_grace_period %q must exceed deid's shutdown_timeout (30s), so a stop checkpoints", deid.StopGracePeriod)
	}
	return errs
}

// checkTopics checks that kafka-init's script creates every topic deid's
// config names (deid never creates topics) — with kafka.scale_out the
// partials topic too, in one partition — and the events topic with the
// partitions gen produces to, at least one per instance.
func checkTopics(initCmd, genCmd []string, job deidJob, replicas int) []error {
	var errs []error
	created := map[string]string{} // topic → its partitions
	for _, m := range regexp.MustCompile(`--topic (\S+) --partitions (\d+)`).FindAllStringSubmatch(strings.Join(initCmd, "\n"), -1) {
		created[m[1]] = m[2]
	}
	for _, topic := range append(slices.Clone(job.Kafka.Topics), job.SettingsTopic, job.deadLetterTopic(), job.Anchors.Topic) {
		if _, ok := created[topic]; topic != "" && !ok {
			errs = append(errs, fmt.Errorf("services.kafka-init does not create the topic %q that deid.yaml names (have %v); deid never creates topics", topic, created))
		}
	}
	if job.Kafka.ScaleOut {
		if p, ok := created[job.partialsTopic()]; !ok || p != "1" {
			errs = append(errs, fmt.Errorf("services.kafka-init must create the partials topic %q in one partition for kafka.scale_out (have %v)", job.partialsTopic(), created))
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
	partitions := 0
	for _, topic := range job.Kafka.Topics {
		n, _ := strconv.Atoi(created[topic])
		partitions += n
	}
	if replicas > partitions {
		errs = append(errs, fmt.Errorf("services.deid: %d replicas for %d input partitions: an instance beyond one a partition waits as a spare, unready; create the topic with more partitions or run fewer", replicas, partitions))
	}
	return errs
}

// checkBucket checks that the service s3-init creates the bucket of the
// config's s3:// URLs, after the S3 server starts and before deid does.
func checkBucket(cf composeFile, job deidJob) []error {
	var errs []error
	init, ok := cf.Services["s3-init"]
	if !ok {
		return []error{fmt.Errorf("deid.yaml keeps data on s3:// but no service s3-init creates its bucket (deid never creates buckets)")}
	}
	if _, ok := init.DependsOn["s3"]; !ok {
		errs = append(errs, fmt.Errorf("services.s3-init must depend on the S3 server, service s3"))
	}
	if _, ok := cf.Services["deid"].DependsOn["s3-init"]; !ok {
		errs = append(errs, fmt.Errorf("services.deid must depend on s3-init, so the bucket exists when it starts"))
	}
	script := strings.Join(init.Command, "\n")
	for _, b := range job.buckets() {
		if !regexp.MustCompile(`--bucket ` + regexp.QuoteMeta(b) + `(\s|$)`).MatchString(script) {
			errs = append(errs, fmt.Errorf("services.s3-init does not create the bucket %q that deid.yaml names", b))
		}
	}
	return errs
}

// publishedPorts returns how many host ports publish container port port
// ("127.0.0.1:9090-9092:9090" publishes three), 0 for none.
func publishedPorts(ports []string, port int32) int {
	n := 0
	for _, p := range ports {
		i := strings.LastIndexByte(p, ':')
		if i < 0 || p[i+1:] != strconv.Itoa(int(port)) {
			continue
		}
		host := p[:i]
		host = host[strings.LastIndexByte(host, ':')+1:]
		lo, hi, isRange := strings.Cut(host, "-")
		if !isRange {
			n++
			continue
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 == nil && err2 == nil && b >= a {
			n += b - a + 1
		}
	}
	return n
}

func TestComposeFileFollowsTheSpecification(t *testing.T) {
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range validateCompose(composeSchema(t), b, os.ReadFile) {
		t.Error(e)
	}
}

func TestABrokenComposeFileFailsTheChecks(t *testing.T) {
	schema := composeSchema(t)
	orig, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	origCfg, err := os.ReadFile("deid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, file, old, new string
		want                 string
	}{
		{"a misspelled service key is refused", "compose.yaml", "    pull_policy: never\n    depends_on:\n      kafka-init:\n        condition: service_completed_successfully\n      s3-init:", "    pull_polcy: never\n    depends_on:\n      kafka-init:\n        condition: service_completed_successfully\n      s3-init:", "pull_polcy"},
		{"a misspelled top-level key is refused", "compose.yaml", "\nvolumes:\n  kafka: {}", "\nvolume:\n  kafka: {}", "volume"},
		{"a value of the wrong type is refused", "compose.yaml", "      replicas: 3", "      replicas: [3]", "replicas"},
		{"a malformed duration is refused", "compose.yaml", "stop_grace_period: 45s", "stop_grace_period: 45 seconds", `stop_grace_period "45 seconds"`},
		{"a duplicate key is refused", "compose.yaml", "    stop_grace_period: 45s\n", "    stop_grace_period: 45s\n    stop_grace_period: 50s\n", "already defined"},
		{"several instances without kafka.scale_out are refused", "deid.yaml", "  scale_out: true", "  scale_out: false", "without kafka.scale_out"},
		{"several instances on one machine's directory are refused", "deid.yaml", "state_dir: s3://deid/state", "state_dir: /var/lib/deid", "both must be on s3://"},
		{"more instances than input partitions are refused", "compose.yaml", "      replicas: 3", "      replicas: 7", "7 replicas for 6 input partitions"},
		{"instances sharing one host port are refused", "compose.yaml", `"127.0.0.1:9090-9092:9090"`, `"127.0.0.1:9090:9090"`, "1 host ports for 3 replicas"},
		{"a partials topic in several partitions is refused", "compose.yaml", "$$t --topic deid.partials --partitions 1", "$$t --topic deid.partials --partitions 3", `partials topic "deid.partials"`},
		{"a bucket that is not created is refused", "compose.yaml", "--bucket deid", "--bucket deid-data", `bucket "deid"`},
		{"deid not waiting for its bucket is refused", "compose.yaml", "      s3-init:\n        condition: service_completed_successfully\n", "", "must depend on s3-init"},
		{"a dependency on a service that does not exist is refused", "compose.yaml", "      kafka:\n        condition: service_healthy", "      kafak:\n        condition: service_healthy", `no service "kafak"`},
		{"a volume that is not declared is refused", "compose.yaml", "      - s3:/data", "      - s4:/data", `no top-level volume "s4"`},
		{"a stop grace period shorter than the shutdown timeout is refused", "compose.yaml", "stop_grace_period: 45s", "stop_grace_period: 10s", "shutdown_timeout"},
		{"a topic deid reads that is not created is refused", "compose.yaml", "$$t --topic workspace-settings", "$$t --topic workspace-setting", `topic "workspace-settings"`},
		{"an anchor topic that is not created is refused", "compose.yaml", "$$t --topic deid.anchors", "# no anchor topic", `topic "deid.anchors"`},
		{"a sample in more partitions than the topic has is refused", "compose.yaml", `"--partitions", "6"`, `"--partitions", "8"`, "in 8 partitions"},
		{"an unpublished metrics port is refused", "compose.yaml", `"127.0.0.1:9090-9092:9090"`, `"127.0.0.1:9091-9093:9091"`, "do not publish"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			compose, cfg := orig, origCfg
			edit := func(b []byte) []byte {
				if !bytes.Contains(b, []byte(c.old)) {
					t.Fatalf("%s does not contain %q: the case no longer edits anything", c.file, c.old)
				}
				return bytes.Replace(b, []byte(c.old), []byte(c.new), 1)
			}
			if c.file == "deid.yaml" {
				cfg = edit(cfg)
			} else {
				compose = edit(compose)
			}
			readFile := func(name string) ([]byte, error) {
				if filepath.Clean(name) == "deid.yaml" {
					return cfg, nil
				}
				return os.ReadFile(name)
			}
			errs := validateCompose(schema, compose, readFile)
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
