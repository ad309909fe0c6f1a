package chaos

import (
	"reflect"
	"testing"
	"time"
)

var shape = map[Role]int{Bookie: 3, Serving: 2}

func mustParse(t *testing.T, s string) []Event {
	t.Helper()
	e, err := ParseSchedule(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestPlanAddsARecoveryAfterEveryFault(t *testing.T) {
	steps, err := Plan(mustParse(t, "kill-bookie-2@10s,pause-serving-0@20s,kill-serving-1@25s/1s"), shape, 1, Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Step{
		{10 * time.Second, Kill, "bookie-2"},
		{13 * time.Second, Restart, "bookie-2"},
		{20 * time.Second, Pause, "serving-0"},
		{25 * time.Second, Kill, "serving-1"},
		{26 * time.Second, Restart, "serving-1"},
		{30 * time.Second, Resume, "serving-0"},
	}
	if !reflect.DeepEqual(steps, want) {
		t.Fatalf("got %v\nwant %v", steps, want)
	}
}

func TestPlanIsDeterministicForASeed(t *testing.T) {
	events := mustParse(t, "kill-bookie@1s,kill-bookie@2s,kill-serving@3s,pause-serving@4s,kill-bookie@9s")
	a, _ := Plan(events, shape, 42, Defaults{})
	b, _ := Plan(events, shape, 42, Defaults{})
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different plans:\n%v\n%v", a, b)
	}
}

func TestPlanDoesNotPickAProcessThatIsAlreadyDown(t *testing.T) {
	// Two bookies killed at the same time, for a while: whatever the
	// seed, the second pick must be another bookie.
	for seed := range uint64(50) {
		steps, err := Plan(mustParse(t, "kill-bookie@1s/10s,kill-bookie@2s/10s"), shape, seed, Defaults{})
		if err != nil {
			t.Fatal(err)
		}
		if steps[0].Target == steps[1].Target {
			t.Fatalf("seed %d: killed %s twice while it was down: %v", seed, steps[0].Target, steps)
		}
	}
}

func TestPlanRejectsProcessesTheClusterDoesNotHave(t *testing.T) {
	if _, err := Plan(mustParse(t, "kill-bookie-3@1s"), shape, 1, Defaults{}); err == nil {
		t.Fatal("bookie-3 of 3 accepted")
	}
	if _, err := Plan(mustParse(t, "kill-serving@1s"), map[Role]int{Bookie: 1}, 1, Defaults{}); err == nil {
		t.Fatal("serving fault accepted in a cluster without serving nodes")
	}
}
