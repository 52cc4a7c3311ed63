package deploy

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// imageConfig is the part of `podman inspect` the test checks.
type imageConfig struct {
	Config struct {
		User         string              `json:"User"`
		Entrypoint   []string            `json:"Entrypoint"`
		Cmd          []string            `json:"Cmd"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts"`
		WorkingDir   string              `json:"WorkingDir"`
		Labels       map[string]string   `json:"Labels"`
	} `json:"Config"`
}

// podman runs podman and returns its standard output.
func podman(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("podman", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, errors.New(strings.TrimSpace(err.Error() + ": " + stderr.String()))
	}
	return out, nil
}

// The image as scripts/image.sh builds it: its config, its file system, and
// its /deid run on the host.
func TestImageBuildsAndItsBinaryRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: building the image (go build, podman build) is left to the full suite")
	}
	if _, err := exec.LookPath("podman"); err != nil {
		if os.Getenv("DEID_REQUIRE_PODMAN") == "1" {
			t.Fatal("podman is not installed and DEID_REQUIRE_PODMAN=1: install it with `bash scripts/image.sh podman` (Debian's package)")
		}
		t.Skip("podman is not installed: `bash scripts/image.sh podman` installs it (set DEID_REQUIRE_PODMAN=1 to make this a failure)")
	}
	root := repoRoot(t)
	var r [6]byte
	rand.Read(r[:])
	id := hex.EncodeToString(r[:])
	name, version := "deid-imagetest-"+id, "imagetest-"+id
	ref := name + ":" + version

	build := exec.Command("bash", "scripts/image.sh")
	build.Dir = root
	build.Env = append(os.Environ(), "DEID_IMAGE="+name, "VERSION="+version)
	out, err := build.CombinedOutput()
	t.Cleanup(func() { podman(t, "rmi", "--force", ref, name+":latest") })
	if err != nil {
		t.Fatalf("scripts/image.sh: %v\n%s", err, out)
	}
	t.Logf("scripts/image.sh: %s", bytes.TrimSpace(out))

	// The image's config.
	raw, err := podman(t, "inspect", "--type", "image", ref)
	if err != nil {
		t.Fatal(err)
	}
	var ic []imageConfig
	if err := json.Unmarshal(raw, &ic); err != nil || len(ic) != 1 {
		t.Fatalf("podman inspect: %v (%d images)", err, len(ic))
	}
	cfg := ic[0].Config
	if cfg.User != "65532:65532" {
		t.Errorf("image user %q; want the unprivileged 65532:65532, never root", cfg.User)
	}
	if diff := cmp.Diff([]string{"/deid"}, cfg.Entrypoint); diff != "" {
		t.Errorf("entrypoint (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"run", "--config", "/etc/deid/deid.yaml"}, cfg.Cmd); diff != "" {
		t.Errorf("default command (-want +got):\n%s", diff)
	}
	var ports []string
	for p := range cfg.ExposedPorts {
		ports = append(ports, p)
	}
	if diff := cmp.Diff([]string{"9090/tcp"}, ports); diff != "" {
		t.Errorf("exposed ports, http_addr's (-want +got):\n%s", diff)
	}
	if got := cfg.Labels["org.opencontainers.image.version"]; got != version {
		t.Errorf("label org.opencontainers.image.version %q; want %q", got, version)
	}

	// The file system, exported from a container that is created, not run.
	cid, err := podman(t, "create", ref)
	if err != nil {
		t.Fatal(err)
	}
	container := strings.TrimSpace(string(cid))
	t.Cleanup(func() { podman(t, "rm", "--force", container) })
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "rootfs.tar")
	if _, err := podman(t, "export", "--output", tarPath, container); err != nil {
		t.Fatal(err)
	}
	files := readRootfs(t, tarPath, filepath.Join(dir, "deid"))
	checkRootfs(t, files)

	// /deid is static (no ELF interpreter: CGO_ENABLED=0 held), and runs.
	bin := filepath.Join(dir, "deid")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("/deid: %v", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("/deid is dynamically linked (it names an ELF interpreter); a scratch image needs a static binary")
		}
	}
	f.Close()
	got, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || string(got) != "deid "+version+"\n" {
		t.Errorf("/deid version: %v, %q; want %q", err, got, "deid "+version+"\n")
	}

	// Running the container itself: this sandbox's rlimits refuse it (the
	// OCI runtime may not set RLIMIT_NOFILE here), which is why /deid ran on
	// the host above. Where containers can run, the image must answer too.
	run, err := podman(t, "run", "--rm", "--network", "none", ref, "version")
	switch {
	case err == nil:
		if string(run) != "deid "+version+"\n" {
			t.Errorf("podman run %s version: %q; want %q", ref, run, "deid "+version+"\n")
		}
		t.Logf("podman run %s version: %s", ref, bytes.TrimSpace(run))
	case strings.Contains(err.Error(), "setrlimit"):
		t.Logf("running a container is refused on this machine (%v): its rlimits forbid the OCI runtime's setrlimit, so the image's /deid was exported with podman create + podman export and run on the host instead", err)
	default:
		t.Errorf("podman run %s version: %v", ref, err)
	}
}

// rootfsEntry is one file of the image's file system.
type rootfsEntry struct {
	mode     int64 // permission bits and sticky bit
	uid, gid int
	size     int64
	dir      bool
	content  []byte // small regular files only
}

// readRootfs reads an exported file system, writing /deid to binPath.
func readRootfs(t *testing.T, tarPath, binPath string) map[string]rootfsEntry {
	t.Helper()
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string]rootfsEntry{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", tarPath, err)
		}
		name := path.Clean("/" + h.Name)
		e := rootfsEntry{mode: h.Mode & 0o7777, uid: h.Uid, gid: h.Gid, size: h.Size, dir: h.Typeflag == tar.TypeDir}
		switch {
		case name == "/deid":
			out, err := os.OpenFile(binPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, tr); err != nil {
				t.Fatal(err)
			}
			if err := out.Close(); err != nil {
				t.Fatal(err)
			}
		case h.Typeflag == tar.TypeReg && h.Size < 1<<20:
			e.content, err = io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
		}
		files[name] = e
	}
	return files
}

// checkRootfs checks the image's files: the binary and the certificates
// root's, the user known by name, the state and output directories the
// user's and nothing else.
func checkRootfs(t *testing.T, files map[string]rootfsEntry) {
	t.Helper()
	var names []string
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	t.Logf("image files: %v", names)

	bin, ok := files["/deid"]
	if !ok || bin.dir || bin.mode&0o111 == 0 || bin.uid != 0 || bin.mode&0o022 != 0 {
		t.Errorf("/deid: %+v; want an executable owned by root, writable by no one else", bin)
	}
	if ca := files["/etc/ssl/certs/ca-certificates.crt"]; !bytes.Contains(ca.content, []byte("BEGIN CERTIFICATE")) {
		t.Errorf("/etc/ssl/certs/ca-certificates.crt holds no certificate (%d bytes)", ca.size)
	}
	if pw := files["/etc/passwd"]; !bytes.Contains(pw.content, []byte(":65532:65532:")) {
		t.Errorf("/etc/passwd names no user 65532:65532:\n%s", pw.content)
	}
	if tmp := files["/tmp"]; !tmp.dir || tmp.mode != 0o1777 {
		t.Errorf("/tmp: %+v; want a directory with mode 1777", tmp)
	}
	writable := []string{"/data/deid", "/var/lib/deid"}
	for _, n := range writable {
		if e := files[n]; !e.dir || e.uid != 65532 || e.gid != 65532 {
			t.Errorf("%s: %+v; want a directory owned by 65532:65532 (state_dir and out of the shipped configs)", n, e)
		}
	}
	for _, n := range names {
		if e := files[n]; (e.uid != 0 || e.gid != 0) && !slices.Contains(writable, n) {
			t.Errorf("%s is owned by %d:%d; only %v belong to the user", n, e.uid, e.gid, writable)
		}
	}
}
