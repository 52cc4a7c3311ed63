package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// manifest is one object of a file under k8s/.
type manifest struct {
	file string
	obj  any // *appsv1.Deployment, *corev1.ConfigMap, ...
}

// newObject returns the Kubernetes API type of a manifest's apiVersion and
// kind, or nil for one this directory does not use.
func newObject(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/Secret":
		return &corev1.Secret{}
	case "v1/PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	}
	return nil
}

// splitDocuments splits a YAML stream at its "---" lines, dropping
// documents that hold only comments.
func splitDocuments(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(b), -1) {
		meaningful := false
		for _, line := range strings.Split(d, "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
				meaningful = true
			}
		}
		if meaningful {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// decodeManifests decodes every object of one file strictly into its API
// type: an unknown or misspelled field, a duplicate key or a value of the
// wrong type is an error, as is a kind this directory does not know.
func decodeManifests(file string, b []byte) ([]manifest, error) {
	var out []manifest
	for i, doc := range splitDocuments(b) {
		var tm struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, i+1, err)
		}
		obj := newObject(tm.APIVersion, tm.Kind)
		if obj == nil {
			return nil, fmt.Errorf("%s: document %d: apiVersion %q kind %q is not one the checks know; add it to newObject", file, i+1, tm.APIVersion, tm.Kind)
		}
		if err := unmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("%s: document %d (%s): %w", file, i+1, tm.Kind, err)
		}
		out = append(out, manifest{file: file, obj: obj})
	}
	return out, nil
}

// unmarshalStrict decodes YAML into an API type as the API server's strict
// field validation does: a duplicate key, an unknown field or one that
// differs from a known field only in case (which encoding/json would take)
// is an error naming the field's path.
func unmarshalStrict(doc []byte, obj any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(j, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// readManifests decodes every file under k8s/, each first passed through
// edit (if not nil).
func readManifests(t *testing.T, edit func(file string, b []byte) []byte) ([]manifest, error) {
	t.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests under k8s/ (%v)", err)
	}
	var all []manifest
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			b = edit(f, b)
		}
		ms, err := decodeManifests(f, b)
		if err != nil {
			return nil, err
		}
		all = append(all, ms...)
	}
	return all, nil
}

// replaceIn returns an edit that replaces old by new in one file, failing
// the test when old is not there (so the case cannot pass by not applying).
func replaceIn(t *testing.T, file, old, new string) func(string, []byte) []byte {
	return func(f string, b []byte) []byte {
		if f != file {
			return b
		}
		if !bytes.Contains(b, []byte(old)) {
			t.Fatalf("%s does not contain %q: the case no longer edits anything", file, old)
		}
		return bytes.Replace(b, []byte(old), []byte(new), 1)
	}
}

func TestManifestsDecodeStrictlyIntoTheKubernetesTypes(t *testing.T) {
	ms, err := readManifests(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, m := range ms {
		kinds = append(kinds, fmt.Sprintf("%T", m.obj))
	}
	for _, want := range []string{"*v1.Deployment", "*v1.ConfigMap", "*v1.Secret", "*v1.PodDisruptionBudget"} {
		if !slices.Contains(kinds, want) {
			t.Errorf("no %s among the manifests (%v)", want, kinds)
		}
	}
	if errs := checkManifests(ms); len(errs) > 0 {
		for _, e := range errs {
			t.Error(e)
		}
	}
}

func TestABrokenManifestFailsTheChecks(t *testing.T) {
	cases := []struct {
		name, file, old, new string
		want                 string // in the error
	}{
		{"a misspelled probe field is an unknown field", "k8s/deployment.yaml", "readinessProbe:", "readinesProbe:", `unknown field "spec.template.spec.containers[0].readinesProbe"`},
		{"a misspelled nested field is an unknown field", "k8s/deployment.yaml", "containerPort: 9090", "containerport: 9090", `unknown field "spec.template.spec.containers[0].ports[0].containerport"`},
		{"a misspelled key of a ConfigMap is an unknown field", "k8s/configmap.yaml", "\ndata:\n", "\ndatas:\n", `unknown field "datas"`},
		{"a value of the wrong type is refused", "k8s/deployment.yaml", "replicas: 3", "replicas: three", "cannot unmarshal"},
		{"several pods without kafka.scale_out are refused", "k8s/configmap.yaml", "      scale_out: true", "      scale_out: false", "replicas is 3 without kafka.scale_out"},
		{"several pods on one pod's disk are refused", "k8s/configmap.yaml", "state_dir: s3://deid-training/job/state", "state_dir: /var/lib/deid", "both must be on s3://"},
		{"a surge pod is refused: beyond the partitions it never becomes ready", "k8s/deployment.yaml", "maxSurge: 0", "maxSurge: 1", "maxSurge"},
		{"a disruption budget that selects no pod of the job is refused", "k8s/pdb.yaml", "      app.kubernetes.io/name: deid", "      app.kubernetes.io/name: deid-x", "PodDisruptionBudget"},
		{"credentials from a Secret that is not among the manifests are refused", "k8s/deployment.yaml", "name: deid-s3", "name: deid-s4", `Secret "deid-s4"`},
		{"running as root is refused", "k8s/deployment.yaml", "runAsUser: 65532", "runAsUser: 0", "runAsUser"},
		{"a readiness probe on another path is refused", "k8s/deployment.yaml", "path: /readyz", "path: /ready", "/readyz"},
		{"a scrape port that is not http_addr's is refused", "k8s/deployment.yaml", `prometheus.io/port: "9090"`, `prometheus.io/port: "9091"`, "prometheus.io/port"},
		{"a mount of a ConfigMap that does not exist is refused", "k8s/deployment.yaml", "name: deid-config", "name: deid-confg", `ConfigMap "deid-confg"`},
		{"a key file outside the Secret's mount is refused", "k8s/configmap.yaml", "pseudonym_key_file: /etc/deid-keys/pseudonym-key", "pseudonym_key_file: /etc/deid-keys/pseudonym_key", "pseudonym_key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ms, err := readManifests(t, replaceIn(t, c.file, c.old, c.new))
			var errs []error
			if err != nil {
				errs = append(errs, err)
			} else {
				errs = checkManifests(ms)
			}
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

// deidConfig is the part of deid's configuration that the manifests must
// agree with.
type deidConfig struct {
	StateDir string `json:"state_dir"`
	Out      string `json:"out"`
	HTTPAddr string `json:"http_addr"`
	Secrets  struct {
		PseudonymKeyFile string `json:"pseudonym_key_file"`
		SigningKeyFile   string `json:"signing_key_file"`
	} `json:"secrets"`
}

// imageUser is the numeric user the Dockerfile runs as.
func imageUser() (uid, gid int64, err error) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		return 0, 0, err
	}
	m := regexp.MustCompile(`(?m)^USER (\d+):(\d+)\s*$`).FindSubmatch(b)
	if m == nil {
		return 0, 0, fmt.Errorf("../Dockerfile has no numeric USER uid:gid line")
	}
	uid, _ = strconv.ParseInt(string(m[1]), 10, 64)
	gid, _ = strconv.ParseInt(string(m[2]), 10, 64)
	return uid, gid, nil
}

// checkManifests checks what strict decoding cannot: that the objects agree
// with each other, with deid's configuration in the ConfigMap and with the
// image; that the Deployment runs as many non-root instances, with their
// probes, as the configuration allows, rolled and disrupted one at a time.
func checkManifests(ms []manifest) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	configMaps := map[string]*corev1.ConfigMap{}
	secrets := map[string]*corev1.Secret{}
	claims := map[string]bool{}
	var deps []*appsv1.Deployment
	var budgets []*policyv1.PodDisruptionBudget
	for _, m := range ms {
		switch o := m.obj.(type) {
		case *appsv1.Deployment:
			deps = append(deps, o)
		case *corev1.ConfigMap:
			configMaps[o.Name] = o
		case *corev1.Secret:
			secrets[o.Name] = o
		case *corev1.PersistentVolumeClaim:
			claims[o.Name] = true
		case *policyv1.PodDisruptionBudget:
			budgets = append(budgets, o)
		}
	}
	if len(deps) != 1 {
		fail("want one Deployment, have %d", len(deps))
		return errs
	}
	d := deps[0]
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		fail("deployment %s: want one container, have %d", d.Name, len(pod.Containers))
		return errs
	}
	c := pod.Containers[0]

	// Non-root, as the image's USER.
	uid, gid, err := imageUser()
	if err != nil {
		fail("%v", err)
	}
	psc := pod.SecurityContext
	switch {
	case psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot:
		fail("deployment %s: securityContext.runAsNonRoot must be true", d.Name)
	case psc.RunAsUser == nil || *psc.RunAsUser != uid || psc.RunAsGroup == nil || *psc.RunAsGroup != gid:
		fail("deployment %s: securityContext.runAsUser/runAsGroup must be the image's user %d:%d", d.Name, uid, gid)
	}
	csc := c.SecurityContext
	if csc == nil || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation ||
		csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem ||
		csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") {
		fail("container %s: securityContext must forbid privilege escalation, keep the root file system read-only and drop ALL capabilities", c.Name)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		fail("container %s: resources.requests needs cpu and memory", c.Name)
	}

	// deid's own configuration, from the ConfigMap the pod mounts.
	var cfg deidConfig
	cfgMount, cfgText := "", ""
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	mounts := map[string]string{} // mount path → volume name
	for _, vm := range c.VolumeMounts {
		v, ok := volumes[vm.Name]
		if !ok {
			fail("container %s: volumeMount %q names no volume", c.Name, vm.Name)
			continue
		}
		mounts[vm.MountPath] = vm.Name
		switch {
		case v.ConfigMap != nil:
			cm, ok := configMaps[v.ConfigMap.Name]
			if !ok {
				fail("volume %s: ConfigMap %q is not among the manifests", v.Name, v.ConfigMap.Name)
				continue
			}
			text, ok := cm.Data["deid.yaml"]
			if !ok {
				fail("ConfigMap %s: no key deid.yaml", cm.Name)
				continue
			}
			if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
				fail("ConfigMap %s: deid.yaml: %v", cm.Name, err)
			}
			cfgText = text
			cfgMount = vm.MountPath
		case v.Secret != nil:
			s, ok := secrets[v.Secret.SecretName]
			if !ok {
				fail("volume %s: Secret %q is not among the manifests", v.Name, v.Secret.SecretName)
			} else if _, ok := s.StringData["pseudonym-key"]; !ok {
				if _, ok := s.Data["pseudonym-key"]; !ok {
					fail("Secret %s: no key pseudonym-key", s.Name)
				}
			}
		case v.PersistentVolumeClaim != nil:
			if !claims[v.PersistentVolumeClaim.ClaimName] {
				fail("volume %s: PersistentVolumeClaim %q is not among the manifests", v.Name, v.PersistentVolumeClaim.ClaimName)
			}
		}
	}
	if cfgMount == "" {
		fail("container %s mounts no ConfigMap with deid.yaml", c.Name)
		return errs
	}
	if !slices.Contains(c.Args, filepath.Join(cfgMount, "deid.yaml")) {
		fail("container %s: args %v do not name %s", c.Name, c.Args, filepath.Join(cfgMount, "deid.yaml"))
	}
	job, err := readJob([]byte(cfgText))
	if err != nil {
		fail("deid.yaml: %v", err)
		return errs
	}
	replicas := 1
	if d.Spec.Replicas != nil {
		replicas = int(*d.Spec.Replicas)
	}
	errs = append(errs, job.checkInstances("deployment "+d.Name, replicas)...)
	switch {
	case !job.shared() && d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType:
		fail("deployment %s: strategy %q; want Recreate: a state directory or output on a volume is locked by one process", d.Name, d.Spec.Strategy.Type)
	case job.shared() && d.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType:
		if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxSurge == nil || ru.MaxSurge.IntValue() != 0 {
			fail("deployment %s: rollingUpdate.maxSurge must be 0: with as many pods as partitions, a surge pod is a spare that never becomes ready, and the rollout would wait for it", d.Name)
		}
	}
	if replicas > 1 {
		labels := d.Spec.Template.Labels
		if !slices.ContainsFunc(budgets, func(b *policyv1.PodDisruptionBudget) bool {
			sel, err := metav1.LabelSelectorAsMap(b.Spec.Selector)
			if err != nil || len(sel) == 0 {
				return false
			}
			for k, v := range sel {
				if labels[k] != v {
					return false
				}
			}
			return b.Spec.MaxUnavailable != nil && b.Spec.MaxUnavailable.IntValue() == 1
		}) {
			fail("deployment %s: %d pods and no PodDisruptionBudget with maxUnavailable 1 selecting them (labels %v): a drain could stop the whole job at once", d.Name, replicas, labels)
		}
	}
	for _, ef := range c.EnvFrom {
		if ef.SecretRef != nil {
			if _, ok := secrets[ef.SecretRef.Name]; !ok {
				fail("container %s: envFrom names Secret %q, which is not among the manifests", c.Name, ef.SecretRef.Name)
			}
		}
	}

	// Every path deid writes or reads lies on a volume of its kind.
	onVolume := func(key, path string, want func(corev1.Volume) bool) {
		name, ok := mounts[path]
		if !ok && path != "" {
			name, ok = mounts[filepath.Dir(path)]
		}
		if !ok || !want(volumes[name]) {
			fail("deid.yaml %s: %q is not on a volume of its kind in the pod (mounts %v)", key, path, mounts)
		}
	}
	isClaim := func(v corev1.Volume) bool { return v.PersistentVolumeClaim != nil }
	isSecret := func(v corev1.Volume) bool {
		if v.Secret == nil {
			return false
		}
		s, ok := secrets[v.Secret.SecretName]
		if !ok {
			return false
		}
		key := filepath.Base(cfg.Secrets.PseudonymKeyFile)
		_, inString := s.StringData[key]
		_, inData := s.Data[key]
		return inString || inData
	}
	for _, p := range []struct{ key, path string }{{"state_dir", cfg.StateDir}, {"out", cfg.Out}} {
		if !strings.HasPrefix(p.path, "s3://") {
			onVolume(p.key, p.path, isClaim)
		}
	}
	onVolume("secrets.pseudonym_key_file", cfg.Secrets.PseudonymKeyFile, isSecret)

	// Probes and scraping on the one port deid serves.
	_, port, err := splitPort(cfg.HTTPAddr)
	if err != nil {
		fail("deid.yaml http_addr: %v", err)
		return errs
	}
	portNames := map[string]int32{}
	for _, p := range c.Ports {
		portNames[p.Name] = p.ContainerPort
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != port {
		fail("container %s: want one containerPort, http_addr's %d (have %v)", c.Name, port, c.Ports)
	}
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil {
			fail("container %s: %s must GET %s", c.Name, name, path)
			return
		}
		pp := p.HTTPGet.Port.IntVal
		if p.HTTPGet.Port.StrVal != "" {
			pp = portNames[p.HTTPGet.Port.StrVal]
		}
		if p.HTTPGet.Path != path || pp != port {
			fail("container %s: %s GETs %s on port %d; want %s on %d", c.Name, name, p.HTTPGet.Path, pp, path, port)
		}
	}
	probe("livenessProbe", c.LivenessProbe, "/healthz")
	probe("readinessProbe", c.ReadinessProbe, "/readyz")
	if c.StartupProbe != nil {
		probe("startupProbe", c.StartupProbe, "/healthz")
	}
	ann := d.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" || ann["prometheus.io/port"] != strconv.Itoa(int(port)) {
		fail("pod annotations: want prometheus.io/scrape \"true\", prometheus.io/path /metrics, prometheus.io/port %q (have %v)", strconv.Itoa(int(port)), ann)
	}
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds <= 30 {
		fail("deployment %s: terminationGracePeriodSeconds must exceed deid's shutdown_timeout (30s), so a stop checkpoints", d.Name)
	}
	return errs
}

// splitPort returns the host and port of an http_addr such as ":9090".
func splitPort(addr string) (string, int32, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", 0, fmt.Errorf("%q has no port", addr)
	}
	p, err := strconv.ParseUint(addr[i+1:], 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("%q: %w", addr, err)
	}
	return addr[:i], int32(p), nil
}
