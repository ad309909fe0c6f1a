package client

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseTime parses a point in time as the command line accepts it:
//
//   - RFC 3339, with or without fractional seconds: 2026-01-02T15:04:05Z,
//     2026-01-02T15:04:05.5+01:00;
//   - relative to now, a minus sign and a duration (ParseDuration units):
//     -2h, -30m, -1d12h, -1w;
//   - "now";
//   - milliseconds since the Unix epoch after an at sign: @1767225600000.
//
// Bad input gives an error matching ErrInvalidArgument.
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return time.Time{}, invalidArg("empty time")
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "-"):
		d, err := ParseDuration(s[1:])
		if err != nil {
			return time.Time{}, invalidArg("time %q: %v", s, err)
		}
		return now.Add(-d), nil
	case strings.HasPrefix(s, "@"):
		ms, err := strconv.ParseInt(s[1:], 10, 64)
		if err != nil {
			return time.Time{}, invalidArg("time %q: want @milliseconds", s)
		}
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, invalidArg("time %q: want RFC 3339 (2006-01-02T15:04:05Z) or relative (-2h)", s)
	}
	return t, nil
}

// ParseDuration is time.ParseDuration with two more units, d (24 h) and
// w (7 d): 7d, 1w2d, 1d12h30m. Negative durations are refused; "-1" alone
// means "forever" to the callers that accept it and is not parsed here.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" || strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		return 0, invalidArg("duration %q: want a positive duration like 30m, 2h, 7d", s)
	}
	if s == "0" {
		return 0, nil
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		j := i
		for j < len(rest) && !(rest[j] >= '0' && rest[j] <= '9' || rest[j] == '.') {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		if num == "" || unit == "" {
			return 0, invalidArg("duration %q: want number+unit pairs (ns, us, ms, s, m, h, d, w)", s)
		}
		d, err := unitDuration(num, unit)
		if err != nil {
			return 0, invalidArg("duration %q: %v", s, err)
		}
		if d > math.MaxInt64-total {
			return 0, invalidArg("duration %q: longer than %v", s, time.Duration(math.MaxInt64))
		}
		total += d
		rest = rest[j:]
	}
	return total, nil
}

func unitDuration(num, unit string) (time.Duration, error) {
	var mult time.Duration
	switch unit {
	case "d":
		mult = 24 * time.Hour
	case "w":
		mult = 7 * 24 * time.Hour
	default:
		return time.ParseDuration(num + unit)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, err
	}
	// A float beyond int64 converts to an arbitrary (often negative) value.
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("longer than %v", time.Duration(math.MaxInt64))
	}
	return time.Duration(v), nil
}
