package decode

// maxTimestampBytes bounds occurred_at: a longer string (a fraction with
// dozens of digits) is not a timestamp any producer writes.
const maxTimestampBytes = 64

// parseTimestamp parses an RFC 3339 timestamp as Go's time.Parse with
// time.RFC3339 does on its strict path — "2006-01-02T15:04:05" with an
// optional fraction of any length, then "Z" or "±hh:mm" — and returns it as
// microseconds since the Unix epoch, UTC. The fraction is truncated to
// microseconds. It never allocates.
func parseTimestamp(s []byte) (int64, bool) {
	if len(s) < len("2006-01-02T15:04:05Z") || len(s) > maxTimestampBytes {
		return 0, false
	}
	days, ok := parseDate(s)
	if !ok {
		return 0, false
	}
	return parseClock(s, days)
}

// parseDate checks the date part of a timestamp, s[:10] ("2006-01-02"),
// and returns its days since the Unix epoch. len(s) must be at least 20.
func parseDate(s []byte) (int64, bool) {
	if s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	year := digits(s[0:4])
	month := digits(s[5:7])
	if year < 0 || month < 1 || month > 12 {
		return 0, false
	}
	day := digits(s[8:10])
	if day < 1 || day > daysIn(month, year) {
		return 0, false
	}
	return daysFromCivil(int64(year), int64(month), int64(day)), true
}

// parseClock parses the rest of a timestamp, s[10:] ("T15:04:05" with an
// optional fraction, then the zone), whose date is days since the epoch.
// len(s) must be 20 to maxTimestampBytes.
func parseClock(s []byte, days int64) (int64, bool) {
	if s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	hour := digits(s[11:13])
	minute := digits(s[14:16])
	sec := digits(s[17:19])
	if hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return 0, false
	}
	s = s[19:]

	var micros int64
	if len(s) >= 2 && s[0] == '.' && isDigit(s[1]) {
		n := 1
		for ; n < len(s) && isDigit(s[n]); n++ {
			if n <= 6 {
				micros = micros*10 + int64(s[n]-'0')
			}
		}
		for k := n; k <= 6; k++ {
			micros *= 10
		}
		s = s[n:]
	}

	var offset int64
	switch {
	case len(s) == 1 && s[0] == 'Z':
	case len(s) == 6 && (s[0] == '+' || s[0] == '-') && s[3] == ':':
		oh, om := digits(s[1:3]), digits(s[4:6])
		if oh < 0 || oh > 23 || om < 0 || om > 59 {
			return 0, false
		}
		offset = int64(oh*60+om) * 60
		if s[0] == '-' {
			offset = -offset
		}
	default:
		return 0, false
	}
	secs := days*86400 + int64(hour*3600+minute*60+sec) - offset
	return secs*1_000_000 + micros, true
}

// digits decodes a short run of ASCII digits, or returns -1.
func digits(s []byte) int {
	n := 0
	for _, c := range s {
		c -= '0'
		if c > 9 {
			return -1
		}
		n = n*10 + int(c)
	}
	return n
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian
// date (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12 // March = 0
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
