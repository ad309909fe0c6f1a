package chaos

import (
	"reflect"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
)

func TestParseScheduleReadsEveryForm(t *testing.T) {
	got, err := ParseSchedule("pause-serving@30s, kill-bookie@10s,kill-serving-1@20s/5s,kill-bookie-0@10s")
	if err != nil {
		t.Fatal(err)
	}
	want := []Event{
		{Action: Kill, Role: Bookie, Index: -1, At: 10 * time.Second},
		{Action: Kill, Role: Bookie, Index: 0, At: 10 * time.Second},
		{Action: Kill, Role: Serving, Index: 1, At: 20 * time.Second, Hold: 5 * time.Second},
		{Action: Pause, Role: Serving, Index: -1, At: 30 * time.Second},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestParseScheduleOfNothingIsEmpty(t *testing.T) {
	if got, err := ParseSchedule("  "); err != nil || got != nil {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestParseScheduleRejectsMalformedEvents(t *testing.T) {
	for _, s := range []string{
		"kill-bookie",           // no offset
		"explode-bookie@1s",     // unknown action
		"kill-etcd@1s",          // unknown role
		"kill@1s",               // no role
		"kill-bookie-x@1s",      // bad index
		"kill-bookie--1@1s",     // too many fields
		"kill-bookie@soon",      // bad offset
		"kill-bookie@-1s",       // negative offset
		"pause-serving@1s/0s",   // zero hold
		"pause-serving@1s/long", // bad hold
		"kill-bookie@1s,,",      // empty event
	} {
		if _, err := ParseSchedule(s); errcode.CodeOf(err) != errcode.InvalidArgument {
			t.Errorf("ParseSchedule(%q) = %v, want InvalidArgument", s, err)
		}
	}
}

func TestParseScheduleBoundsTheEventCount(t *testing.T) {
	s := "kill-bookie@1s"
	for range MaxEvents {
		s += ",kill-bookie@1s"
	}
	if _, err := ParseSchedule(s); err == nil {
		t.Fatal("schedule over MaxEvents accepted")
	}
}

func FuzzParseSchedule(f *testing.F) {
	f.Add("kill-bookie@10s,kill-serving@20s,pause-serving@30s")
	f.Add("pause-serving-1@1m/12s")
	f.Fuzz(func(t *testing.T, s string) {
		events, err := ParseSchedule(s)
		if err != nil {
			return
		}
		for i, e := range events {
			if e.At < 0 || e.Hold < 0 || e.Index < -1 || (i > 0 && events[i-1].At > e.At) {
				t.Fatalf("invalid event accepted: %+v", e)
			}
		}
	})
}
