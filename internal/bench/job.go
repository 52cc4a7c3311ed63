package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	kafka "github.com/segmentio/kafka-go"

	"github.com/mya/deid/sinks/objstore"
)

// Job contenders: one job (kafka.scale_out, state and output on s3://) run
// by one instance and by Config.Instances instances, on the same topic.
const (
	DeidJob1 = "deid_job_1"
	DeidJobN = "deid_job_n"
)

// JobTarget is the scale-out target: CPU-seconds per event of a job of
// several instances within 10% of one instance's.
const JobTarget = 0.9

// Job timings of the benchmark's jobs: short, so that the takeover run
// measures the mechanism rather than waits.
const (
	jobSessionTimeout = 6 * time.Second
	jobLeaseTTL       = 6 * time.Second
	// jobStagger separates the start of a job's instances (a file-backed
	// S3 server races when several writers create a new prefix at once).
	jobStagger = 300 * time.Millisecond
)

// JobRun describes the scale-out measurement in the results ("job").
type JobRun struct {
	Measured   bool   `json:"measured"`
	Note       string `json:"note"`
	Instances  int    `json:"instances,omitempty"`
	Partitions int    `json:"partitions,omitempty"`
	// SessionTimeout and LeaseTTL are the jobs' kafka.session_timeout and
	// storage.lease_ttl, in seconds.
	SessionTimeout float64 `json:"session_timeout_seconds,omitempty"`
	LeaseTTL       float64 `json:"lease_ttl_seconds,omitempty"`
	// InstanceRSSMB is each instance's peak RSS in the last run of the job
	// of several instances, in the order started; the highest is the
	// publisher's (stage 2 runs on one instance at a time).
	InstanceRSSMB []float64 `json:"instance_peak_rss_mib,omitempty"`
	// Blobs are the partial blobs the last run of the job of several
	// instances left in the state store.
	Blobs *BlobFigures `json:"blobs,omitempty"`
	// Takeover is one extra run of the job of several instances in which
	// one instance is killed (SIGKILL) a third of the way in.
	Takeover *Takeover `json:"takeover,omitempty"`
}

// BlobFigures are the sizes of the partial blobs of one job run.
type BlobFigures struct {
	// Count is the blobs; Windows the dataset windows they close
	// (dataset, window start).
	Count   int   `json:"count"`
	Windows int   `json:"windows"`
	Bytes   int64 `json:"bytes"`
	// PerWindow is the mean of all partitions' blobs for one dataset
	// window: what the publisher reads to publish it.
	PerWindow float64 `json:"bytes_per_window"`
	MaxBlob   int64   `json:"max_blob_bytes"`
}

// Takeover is a kill -9 of one instance of a running job, measured from
// the outside.
type Takeover struct {
	// Seconds is from the kill to the survivors holding every partition
	// again (deid_partitions_assigned summed over them).
	Seconds float64 `json:"seconds"`
	// Restores is how many partitions the survivors restored from a
	// checkpoint meanwhile, RestoreSeconds their total restore time and
	// RestoreMax the longest (deid_restore_seconds).
	Restores       uint64  `json:"restores"`
	RestoreSeconds float64 `json:"restore_seconds"`
	// Wall is the whole run, from the first start to the last exit.
	Wall float64 `json:"wall_seconds"`
}

// jobEnv is what the job contenders need beyond the Kafka topics: the S3
// server's bucket and config.
type jobEnv struct {
	k  *kafkaTopics
	so *s3Out
	// config is deid's YAML for a job: the Kafka-mode config plus
	// scale_out, the session timeout and the storage block.
	config string
}

// newJobEnv writes the jobs' config beside the Kafka-mode one.
func newJobEnv(k *kafkaTopics, so *s3Out) (*jobEnv, error) {
	base, err := os.ReadFile(k.Config)
	if err != nil {
		return nil, err
	}
	storage, err := os.ReadFile(so.config)
	if err != nil {
		return nil, err
	}
	e := &jobEnv{k: k, so: so, config: strings.TrimSuffix(k.Config, ".yaml") + "-job.yaml"}
	yaml := string(base) + fmt.Sprintf("kafka:\n  scale_out: true\n  session_timeout: %s\n", jobSessionTimeout) +
		strings.Replace(string(storage), "storage:\n", fmt.Sprintf("storage:\n  lease_ttl: %s\n", jobLeaseTTL), 1)
	return e, os.WriteFile(e.config, []byte(yaml), 0o644)
}

// jobInstance is one running deid process of a job.
type jobInstance struct {
	cmd    *exec.Cmd
	stdout strings.Builder
	stderr strings.Builder
	http   string // host:port of its /metrics
	done   chan struct{}
	err    error
}

// jobRecordsRe finds the records one instance read in its summary:
// "deid v: kafka mode, one instance of a job, 2 partitions here, 40 records in 1s, …".
var jobRecordsRe = regexp.MustCompile(`one instance of a job, \d+ partitions? here, (\d+) records in `)

// jobResult is one run of a job.
type jobResult struct {
	// Sample has the instances' summed CPU and context switches, the wall
	// time from the first start to the last exit, and the highest peak RSS.
	Sample
	// RSS is each instance's peak RSS, in the order started.
	RSS []int64
	// Records is the sum of the instances' summaries: at least the input
	// (a partition's count travels with its checkpoint, so a partition that
	// moved counts in both instances' summaries).
	Records  int64
	Blobs    *BlobFigures
	Takeover *Takeover
}

// runJob runs one job of n instances to its end (--stop-at-end) on a fresh
// group, partials topic and s3:// prefix, sizes the partial blobs it left
// and removes its state and output. With kill, it kills one instance a
// third of the way through the input and measures the takeover.
func (e *jobEnv) runJob(ctx context.Context, cfg Config, in *Input, n int, name string, rep int, kill bool) (jobResult, error) {
	var res jobResult
	group := e.k.group(name, rep)
	if err := createTopics(ctx, e.k.Brokers, []kafka.TopicConfig{{Topic: group + ".partials", NumPartitions: 1, ReplicationFactor: 1}}); err != nil {
		return res, err
	}
	defer deleteTopics(e.k.Brokers, group+".partials")
	prefix := fmt.Sprintf("s3://%s/%s-%d", e.so.bucket, name, rep)
	defer e.so.removeAll(context.WithoutCancel(ctx), prefix)
	args := []string{"run", "--config", e.config, "--brokers", strings.Join(e.k.Brokers, ","), "--topics", e.k.Events,
		"--group", group, "--out", prefix + "/out", "--state-dir", prefix + "/state", "--stop-at-end", "--log-level", "error"}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p0 := cpuPressure()
	start := time.Now()
	insts := make([]*jobInstance, n)
	for i := range insts {
		if i > 0 {
			time.Sleep(jobStagger)
		}
		addr, err := freeAddr()
		if err != nil {
			return res, err
		}
		inst := &jobInstance{http: addr, done: make(chan struct{})}
		inst.cmd = exec.CommandContext(ctx, cfg.Deid, append(args, "--http-addr", addr)...)
		inst.cmd.Stdout, inst.cmd.Stderr = &inst.stdout, &inst.stderr
		if cfg.JobProcs > 0 && n > 1 {
			inst.cmd.Env = append(os.Environ(), fmt.Sprintf("GOMAXPROCS=%d", cfg.JobProcs))
		}
		if err := inst.cmd.Start(); err != nil {
			return res, err
		}
		go func() { inst.err = inst.cmd.Wait(); close(inst.done) }()
		insts[i] = inst
	}
	var victim *jobInstance
	if kill {
		var err error
		victim, res.Takeover, err = killOne(ctx, insts, in.Lines, len(in.Events))
		if err != nil {
			return res, err
		}
	}
	for _, inst := range insts {
		<-inst.done
	}
	wall := time.Since(start)
	p1 := cpuPressure()
	s := &res.Sample
	var records int64
	var errs []error
	for i, inst := range insts {
		ru, ok := inst.cmd.ProcessState.SysUsage().(*syscall.Rusage)
		if !ok {
			return res, errors.New("no rusage on this platform")
		}
		s.User += tv(ru.Utime)
		s.Sys += tv(ru.Stime)
		s.VolSwitches += int64(ru.Nvcsw)
		s.InvolSwitches += int64(ru.Nivcsw)
		r := int64(ru.Maxrss) * 1024
		res.RSS = append(res.RSS, r)
		s.MaxRSS = max(s.MaxRSS, r)
		if inst == victim {
			continue
		}
		if inst.err != nil {
			errs = append(errs, fmt.Errorf("instance %d of %d: %w\n%s", i+1, n, inst.err, tail(inst.stderr.String(), 2000)))
			continue
		}
		m := jobRecordsRe.FindStringSubmatch(inst.stdout.String())
		if m == nil {
			errs = append(errs, fmt.Errorf("instance %d of %d: no record count in its summary: %.200q", i+1, n, inst.stdout.String()))
			continue
		}
		c, _ := strconv.ParseInt(m[1], 10, 64)
		records += c
	}
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	// Records read again after a rebalance count twice; fewer than the
	// input would mean a partition went unread.
	if records < in.Lines {
		return res, fmt.Errorf("the job's instances read %d records; the input has %d lines", records, in.Lines)
	}
	res.Records = records
	s.Wall, s.Contention = wall, -1
	if p0 >= 0 && p1 >= p0 && wall > 0 {
		s.Contention = min(1, float64(p1-p0)/float64(wall.Microseconds()))
	}
	if res.Takeover != nil {
		res.Takeover.Wall = wall.Seconds()
	}
	var err error
	res.Blobs, err = e.blobFigures(ctx, prefix+"/state")
	return res, err
}

// errTooLate is killOne's error when the job finished without a takeover:
// the killed instance had read all of its partitions already, so the
// survivors had nothing to take over. Another run, killed at another
// moment, can measure it.
var errTooLate = errors.New("the kill came too late to need a takeover")

// runTakeover runs a job of n instances and kills one (runJob with kill),
// again with a new group and prefix, up to three runs in all, when the
// kill came too late to need a takeover.
func (e *jobEnv) runTakeover(ctx context.Context, cfg Config, in *Input, n int) (jobResult, error) {
	for rep := 0; ; rep++ {
		r, err := e.runJob(ctx, cfg, in, n, "takeover", rep, true)
		if !errors.Is(err, errTooLate) || rep == 2 {
			return r, err
		}
	}
}

// killOne waits until the job has read a third of the input and the group
// is settled with a partition on the instance to kill, kills it (not the
// first: the first to start is likeliest to publish, and a publisher's
// takeover waits for its lease as well) and measures until the others hold
// every partition.
func killOne(ctx context.Context, insts []*jobInstance, lines int64, partitions int) (*jobInstance, *Takeover, error) {
	if len(insts) < 2 {
		return nil, nil, errors.New("a takeover needs at least two instances")
	}
	victim, survivors := insts[len(insts)-1], insts[:len(insts)-1]
	for {
		// A settled group: every partition held once across the
		// instances (during a rebalance an instance still shows the
		// partitions of the generation that is ending), the victim's
		// among them.
		var read, held, all float64
		for _, inst := range insts {
			m, _ := scrape(ctx, inst.http)
			read += m["deid_records_read_total"]
			all += m["deid_partitions_assigned"]
			if inst == victim {
				held = m["deid_partitions_assigned"]
			}
		}
		if read >= float64(lines)/3 && held > 0 && all == float64(partitions) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-victim.done:
			return nil, nil, fmt.Errorf("the instance to kill ended before a third of the input was read with a partition of its own: %v\n%s", victim.err, tail(victim.stderr.String(), 2000))
		case <-time.After(50 * time.Millisecond):
		}
	}
	before := map[*jobInstance]map[string]float64{}
	for _, inst := range survivors {
		before[inst], _ = scrape(ctx, inst.http)
	}
	victim.cmd.Process.Kill()
	killed := time.Now()
	<-victim.done
	for {
		var assigned float64
		ended := 0
		for _, inst := range survivors {
			select {
			case <-inst.done:
				ended++
				continue
			default:
			}
			m, _ := scrape(ctx, inst.http)
			assigned += m["deid_partitions_assigned"]
		}
		if assigned >= float64(partitions) {
			break
		}
		if ended > 0 {
			for _, inst := range survivors {
				select {
				case <-inst.done:
					if inst.err != nil {
						return nil, nil, fmt.Errorf("a surviving instance failed before it held every partition: %v\n%s", inst.err, tail(inst.stderr.String(), 2000))
					}
				default:
				}
			}
			return nil, nil, fmt.Errorf("%d of the surviving instances ended before they held every partition (the killed one had read its partitions to their end): %w", ended, errTooLate)
		}
		if time.Since(killed) > 5*time.Minute {
			return nil, nil, fmt.Errorf("the survivors hold %v of %d partitions five minutes after the kill", assigned, partitions)
		}
		time.Sleep(20 * time.Millisecond)
	}
	to := &Takeover{Seconds: time.Since(killed).Seconds()}
	for _, inst := range survivors {
		m, _ := scrape(ctx, inst.http)
		to.Restores += uint64(m["deid_restore_seconds_count"] - before[inst]["deid_restore_seconds_count"])
		to.RestoreSeconds += m["deid_restore_seconds_sum"] - before[inst]["deid_restore_seconds_sum"]
	}
	return victim, to, nil
}

// scrape reads the unlabelled samples of an instance's /metrics.
func scrape(ctx context.Context, addr string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			m[name] = v
		}
	}
	return m, sc.Err()
}

// freeAddr returns a free port on 127.0.0.1.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// blobFigures sizes the partial blobs under a job's state prefix.
func (e *jobEnv) blobFigures(ctx context.Context, state string) (*BlobFigures, error) {
	st, err := objstore.Open(state, e.so.store)
	if err != nil {
		return nil, err
	}
	infos, err := st.List(ctx, "partials/")
	if err != nil {
		return nil, err
	}
	b := &BlobFigures{}
	windows := map[string]bool{}
	for _, in := range infos {
		if !strings.HasSuffix(in.Key, ".partial") {
			continue
		}
		b.Count++
		b.Bytes += in.Size
		b.MaxBlob = max(b.MaxBlob, in.Size)
		windows[filepath.Dir(in.Key)] = true
	}
	b.Windows = len(windows)
	if b.Windows > 0 {
		b.PerWindow = float64(b.Bytes) / float64(b.Windows)
	}
	return b, nil
}
