package deploy

import (
	"fmt"
	"slices"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
)

// deidJob is the part of a deid.yaml that decides how many instances may
// run it: one process owns a state directory and an output on local disk;
// several instances of one job (kafka.scale_out) share both on s3://.
type deidJob struct {
	Kafka struct {
		Topics        []string `yaml:"topics"`
		Group         string   `yaml:"group"`
		ScaleOut      bool     `yaml:"scale_out"`
		PartialsTopic string   `yaml:"partials_topic"`
	} `yaml:"kafka"`
	SettingsTopic string `yaml:"settings_topic"`
	DeadLetters   struct {
		Topic string `yaml:"topic"`
	} `yaml:"dead_letters"`
	Anchors struct {
		Topic string `yaml:"topic"`
		File  string `yaml:"file"`
	} `yaml:"anchors"`
	StateDir string `yaml:"state_dir"`
	Out      string `yaml:"out"`
}

// readJob decodes the fields of deidJob from a deid.yaml.
func readJob(b []byte) (deidJob, error) {
	var j deidJob
	err := yamlv3.Unmarshal(b, &j)
	return j, err
}

// shared reports whether every instance of the job can reach the state and
// the output: both on object storage.
func (j deidJob) shared() bool {
	return strings.HasPrefix(j.StateDir, "s3://") && strings.HasPrefix(j.Out, "s3://")
}

// usesS3 reports whether anything of the job lives on object storage.
func (j deidJob) usesS3() bool { return len(j.buckets()) > 0 }

// buckets returns the buckets of the job's s3:// URLs, each once.
func (j deidJob) buckets() []string {
	var bs []string
	for _, u := range []string{j.StateDir, j.Out, j.Anchors.File} {
		if rest, ok := strings.CutPrefix(u, "s3://"); ok {
			b, _, _ := strings.Cut(rest, "/")
			if !slices.Contains(bs, b) {
				bs = append(bs, b)
			}
		}
	}
	return bs
}

// deadLetterTopic is the dead-letter topic: dead_letters.topic or
// "<group>.dead-letters".
func (j deidJob) deadLetterTopic() string {
	if j.DeadLetters.Topic != "" {
		return j.DeadLetters.Topic
	}
	return j.Kafka.Group + ".dead-letters"
}

// partialsTopic is the partials topic of a scaled-out job:
// kafka.partials_topic or "<group>.partials".
func (j deidJob) partialsTopic() string {
	if j.Kafka.PartialsTopic != "" {
		return j.Kafka.PartialsTopic
	}
	return j.Kafka.Group + ".partials"
}

// checkInstances checks that replicas instances of where (a compose
// service or a Deployment) can run this config: more than one needs
// kafka.scale_out with the state and the output shared on s3://.
func (j deidJob) checkInstances(where string, replicas int) []error {
	var errs []error
	switch {
	case replicas < 1:
		errs = append(errs, fmt.Errorf("%s: replicas is %d; a job needs at least one instance", where, replicas))
	case replicas > 1 && !j.Kafka.ScaleOut:
		errs = append(errs, fmt.Errorf("%s: replicas is %d without kafka.scale_out: each instance would hold some partitions and every window would wait for the others; set kafka.scale_out with state_dir and out on s3://, or run one", where, replicas))
	case replicas > 1 && !j.shared():
		errs = append(errs, fmt.Errorf("%s: replicas is %d with state_dir %q and out %q: several instances share both, so both must be on s3://", where, replicas, j.StateDir, j.Out))
	}
	return errs
}
