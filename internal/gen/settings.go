package gen

import (
	"cmp"
	"slices"
)

// Settings records (contract §4), one per line, in time order:
//
//	{"workspace_id":"ws_…","ai_training_opt_out":false,"deleted":false,"updated_at":"…","updated_by_role":"owner"}
//
// A deletion is either a full record with "deleted":true or a tombstone-like
// record {"workspace_id":"ws_…","deleted":true}.

// Settings record shapes.
const (
	recFull         = iota
	recTombstone    // {"workspace_id","deleted":true}
	recBadType      // "ai_training_opt_out":"yes": unreadable
	recTruncated    // cut short: unreadable
	recMissingOptIn // no ai_training_opt_out and not deleted: unreadable
)

// An unreadable record names its workspace (workspace_id comes first), so
// that workspace is excluded from then on, reason consent_unreadable (contract
// §4): its kind becomes wsUnreadable. deid reads the settings whole before
// any event, so every event of the workspace is excluded.

type settingRec struct {
	at      int64 // Unix seconds
	seq     int
	ws      *workspace
	shape   int
	optOut  bool
	deleted bool
	role    string
}

// writeSettings writes the settings lines and fills st.Settings and
// st.Workspaces.
func writeSettings(cfg *Config, w *world, st *Stats, out Writer) error {
	r := newRNG(cfg.Seed, 3)
	start := cfg.Start.Unix()
	end := start + int64(cfg.Days)*86400
	var recs []settingRec
	add := func(rec settingRec) {
		rec.seq = len(recs)
		recs = append(recs, rec)
	}
	// times returns n sorted instants in (from, end).
	times := func(from int64, n int) []int64 {
		ts := make([]int64, n)
		for i := range ts {
			ts[i] = r.between(from+60, end-60)
		}
		slices.Sort(ts)
		return ts
	}
	tombstoned := map[string]bool{}
	deletedSeen := 0
	var ordinary []*workspace
	for _, ws := range w.ws {
		created := start - r.between(20*86400, 700*86400)
		switch ws.kind {
		case wsUnknown:
			continue
		case wsOrdinary:
			ordinary = append(ordinary, ws)
			role := "owner"
			if u := r.float(); u > 0.9 {
				role = "editor" // a first record counts whatever the role
			} else if u > 0.7 {
				role = "admin"
			}
			add(settingRec{at: created, ws: ws, role: role})
			if r.chance(0.1) {
				for _, t := range times(created, 1+r.intn(2)) {
					add(settingRec{at: t, ws: ws, role: pick(r, roles)})
				}
			}
		case wsOptedOut:
			if r.chance(0.4) {
				add(settingRec{at: created, ws: ws, optOut: true, role: "owner"})
				break
			}
			add(settingRec{at: created, ws: ws, role: "owner"})
			add(settingRec{at: times(created, 1)[0], ws: ws, optOut: true, role: pick(r, roles[:2])})
		case wsDeleted:
			add(settingRec{at: created, ws: ws, role: "owner"})
			optOut := r.chance(0.3)
			ts := times(created, 3)
			if optOut {
				add(settingRec{at: ts[0], ws: ws, optOut: true, role: "admin"})
			}
			if deletedSeen%2 == 0 {
				add(settingRec{at: ts[1], ws: ws, shape: recTombstone, deleted: true})
				tombstoned[ws.id] = true
				st.Settings.Tombstones++
			} else {
				add(settingRec{at: ts[1], ws: ws, optOut: optOut, deleted: true, role: "owner"})
			}
			if deletedSeen == 0 {
				// Deletion is final: a later record changes nothing.
				add(settingRec{at: ts[2], ws: ws, role: "owner"})
				st.Settings.AfterDeletion++
			}
			deletedSeen++
		case wsReOptInEditor, wsReOptInOwner:
			add(settingRec{at: created, ws: ws, role: "owner"})
			ts := times(created, 2)
			add(settingRec{at: ts[0], ws: ws, optOut: true, role: pick(r, roles[:2])})
			role := "owner"
			if ws.kind == wsReOptInEditor {
				role = "editor"
				st.Settings.IgnoredOptIns++
			}
			add(settingRec{at: ts[1], ws: ws, role: role})
		}
	}
	for i := range cfg.Rates.MalformedSettings {
		if len(ordinary) == 0 {
			break
		}
		ws := pick(r, ordinary)
		ws.kind = wsUnreadable
		add(settingRec{at: end - r.between(3600, 86400), ws: ws, shape: recBadType + i%3, role: "admin"})
		st.Settings.Malformed++
	}
	slices.SortFunc(recs, func(a, b settingRec) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.seq, b.seq)) })
	// An owner's or admin's opt-in after the unreadable record includes the
	// workspace again.
	unreadable := map[*workspace]bool{}
	for i := range recs {
		rec := &recs[i]
		switch {
		case rec.ws.kind != wsUnreadable:
		case rec.shape >= recBadType:
			unreadable[rec.ws] = true
		case rec.shape == recFull && !rec.optOut && (rec.role == "owner" || rec.role == "admin"):
			unreadable[rec.ws] = false
		}
	}
	for ws, still := range unreadable {
		if !still {
			ws.kind = wsOrdinary
		}
	}

	var b []byte
	for i := range recs {
		b = appendSetting(b[:0], &recs[i])
		if err := out.Setting([]byte(recs[i].ws.id), b); err != nil {
			return err
		}
		st.Settings.Lines++
	}
	st.fillWorkspaces(w, tombstoned)
	return nil
}

func appendSetting(b []byte, rec *settingRec) []byte {
	b = append(b, '{')
	b = appendKey(b, "workspace_id")
	b = appendRaw(b, rec.ws.id)
	switch rec.shape {
	case recTombstone:
		b = append(b, ',')
		b = appendKey(b, "deleted")
		return append(b, "true}"...)
	case recTruncated:
		b = append(b, ',')
		b = appendKey(b, "ai_training_opt_out")
		return append(b, "tr"...)
	case recBadType:
		b = append(b, ',')
		b = appendKey(b, "ai_training_opt_out")
		b = appendRaw(b, "yes")
	case recMissingOptIn:
	default:
		b = append(b, ',')
		b = appendKey(b, "ai_training_opt_out")
		b = appendBool(b, rec.optOut)
		b = append(b, ',')
		b = appendKey(b, "deleted")
		b = appendBool(b, rec.deleted)
	}
	b = append(b, ',')
	b = appendKey(b, "updated_at")
	b = appendTime(b, rec.at*1000, tsSeconds)
	b = append(b, ',')
	b = appendKey(b, "updated_by_role")
	b = appendRaw(b, rec.role)
	return append(b, '}')
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}
