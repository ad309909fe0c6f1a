package chaos

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
)

// Action is what an event does to a process.
type Action string

// Actions of a schedule, and the recoveries they imply.
const (
	Kill    Action = "kill"
	Pause   Action = "pause"
	Restart Action = "restart"
	Resume  Action = "resume"
)

// Role is a kind of cluster process.
type Role string

// Roles a schedule can name.
const (
	Bookie  Role = "bookie"
	Serving Role = "serving"
)

// MaxEvents bounds a schedule.
const MaxEvents = 100

// Event is one parsed schedule entry.
type Event struct {
	Action Action
	Role   Role
	// Index of the process within its role; -1 lets the planner choose.
	Index int
	// At is the offset from the start of the run.
	At time.Duration
	// Hold is how long until recovery (restart or resume); 0 = default.
	Hold time.Duration
}

func badSchedule(format string, args ...any) error {
	return errcode.New(errcode.InvalidArgument, "chaos: "+format, args...)
}

// ParseSchedule parses a schedule (see the package documentation) and
// returns its events sorted by offset (stable for equal offsets). An empty
// string is an empty schedule.
func ParseSchedule(s string) ([]Event, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > MaxEvents {
		return nil, badSchedule("%d events, at most %d", len(parts), MaxEvents)
	}
	events := make([]Event, 0, len(parts))
	for _, p := range parts {
		e, err := parseEvent(strings.TrimSpace(p))
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].At < events[j].At })
	return events, nil
}

func parseEvent(s string) (Event, error) {
	what, when, ok := strings.Cut(s, "@")
	if !ok {
		return Event{}, badSchedule("event %q: want <action>-<role>[-<index>]@<offset>[/<hold>]", s)
	}
	e := Event{Index: -1}
	if err := parseWhat(what, &e); err != nil {
		return Event{}, badSchedule("event %q: %v", s, err)
	}
	if err := parseWhen(when, &e); err != nil {
		return Event{}, badSchedule("event %q: %v", s, err)
	}
	return e, nil
}

func parseWhat(what string, e *Event) error {
	fields := strings.Split(what, "-")
	if len(fields) < 2 || len(fields) > 3 {
		return errString("want <action>-<role>[-<index>]")
	}
	switch a := Action(fields[0]); a {
	case Kill, Pause:
		e.Action = a
	default:
		return errString("unknown action " + strconv.Quote(fields[0]) + " (kill, pause)")
	}
	switch r := Role(fields[1]); r {
	case Bookie, Serving:
		e.Role = r
	default:
		return errString("unknown role " + strconv.Quote(fields[1]) + " (bookie, serving)")
	}
	if len(fields) == 3 {
		i, err := strconv.Atoi(fields[2])
		if err != nil || i < 0 {
			return errString("bad index " + strconv.Quote(fields[2]))
		}
		e.Index = i
	}
	return nil
}

func parseWhen(when string, e *Event) error {
	at, hold, hasHold := strings.Cut(when, "/")
	d, err := time.ParseDuration(at)
	if err != nil || d < 0 {
		return errString("bad offset " + strconv.Quote(at))
	}
	e.At = d
	if hasHold {
		h, err := time.ParseDuration(hold)
		if err != nil || h <= 0 {
			return errString("bad hold " + strconv.Quote(hold))
		}
		e.Hold = h
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }
