package bench

import "slices"

// Spread is the median, minimum and maximum of a set of measurements.
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// spread summarizes xs; the median of an even count is the mean of the two
// middle values.
func spread(xs []float64) Spread {
	if len(xs) == 0 {
		return Spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Spread{Median: m, Min: s[0], Max: s[len(s)-1]}
}

// Figures summarizes the samples of one contender over an input.
type Figures struct {
	Runs int `json:"runs"`
	// WallSeconds and CPUSeconds (user + system) per run.
	WallSeconds Spread `json:"wall_seconds"`
	CPUSeconds  Spread `json:"cpu_seconds"`
	// EventsPerSec is input lines over wall time; EventsPerCPUSec over CPU
	// time (the throughput per core); MBPerSec is input bytes (10^6) over
	// wall time.
	EventsPerSec    Spread `json:"events_per_sec"`
	EventsPerCPUSec Spread `json:"events_per_cpu_sec"`
	MBPerSec        Spread `json:"mb_per_sec"`
	// PeakRSSMB is the child's peak RSS in MiB.
	PeakRSSMB Spread `json:"peak_rss_mib"`
	// CPUUtilization is CPU time over wall time (2.0 = both cores busy).
	CPUUtilization Spread `json:"cpu_utilization"`
	// Contention is the machine's CPU pressure during the runs (0–1).
	Contention Spread   `json:"cpu_contention"`
	Samples    []Sample `json:"samples"`
}

// summarize turns samples over an input of lines and bytes into figures.
func summarize(samples []Sample, lines, bytes int64) Figures {
	f := Figures{Runs: len(samples), Samples: samples}
	var wall, cpu, eps, epc, mbs, rss, util, cont []float64
	for _, s := range samples {
		w, c := s.Wall.Seconds(), s.CPU().Seconds()
		wall = append(wall, w)
		cpu = append(cpu, c)
		eps = append(eps, float64(lines)/w)
		if c > 0 {
			epc = append(epc, float64(lines)/c)
		}
		mbs = append(mbs, float64(bytes)/1e6/w)
		rss = append(rss, float64(s.MaxRSS)/(1<<20))
		util = append(util, c/w)
		if s.Contention >= 0 {
			cont = append(cont, s.Contention)
		}
	}
	f.WallSeconds, f.CPUSeconds = spread(wall), spread(cpu)
	f.EventsPerSec, f.EventsPerCPUSec, f.MBPerSec = spread(eps), spread(epc), spread(mbs)
	f.PeakRSSMB, f.CPUUtilization, f.Contention = spread(rss), spread(util), spread(cont)
	return f
}
