package decode

import "testing"

var strSafe = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return
}()

func scanStringTable(b []byte, i int) (int, uint8) {
	i++
	for i < len(b) && strSafe[b[i]] {
		i++
	}
	if i < len(b) && b[i] == '"' {
		return i + 1, 0
	}
	return scanString(b, i-1)
}

var scanInputs = [][]byte{
	[]byte(`"event_id":"01JD3W6Q8K2M5N7P9R1T","`),
	[]byte(`"campaign.metrics","occurred_at":"2026`),
	[]byte(`"payload":{"campaign_id":"cmp_71c4e9"`),
	[]byte(`"x":1,"impressions":120934,"clicks":18`),
	[]byte(`"Glow up with our serum #ad and this is a longer caption text","`),
}

var sink int

func BenchmarkScanSWAR(b *testing.B) {
	for b.Loop() {
		for _, s := range scanInputs {
			n, _ := scanString(s, 0)
			sink += n
		}
	}
}

func BenchmarkScanTable(b *testing.B) {
	for b.Loop() {
		for _, s := range scanInputs {
			n, _ := scanStringTable(s, 0)
			sink += n
		}
	}
}

func BenchmarkSkipOnly(b *testing.B) {
	d, _ := New(DefaultConfig())
	for b.Loop() {
		sink += d.skip(benchCampaign, 0, 0)
	}
}
