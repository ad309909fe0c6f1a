package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-mq/strata/client"
)

// progressEvery is how often the progress bar is redrawn.
const progressEvery = 250 * time.Millisecond

// progress draws a one-line progress bar on a terminal: messages, bytes,
// rate, and the share of the time range covered with an ETA. The share is
// the publish time of the last message replayed within [from, to) (to is
// the start of the replay when --to is open).
type progress struct {
	w        io.Writer
	from, to time.Time
	start    time.Time

	msgs  atomic.Int64
	bytes atomic.Int64
	last  atomic.Int64 // publish time (ns) of the last message

	on   bool
	quit chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// startProgress starts drawing on w when on is set; otherwise the returned
// progress only counts.
func startProgress(w io.Writer, p replayPlan, on bool) *progress {
	now := time.Now()
	pr := &progress{w: w, from: p.from, to: p.to, start: now, on: on, quit: make(chan struct{})}
	if pr.to.IsZero() || pr.to.After(now) {
		pr.to = now
	}
	if !on {
		return pr
	}
	pr.wg.Add(1)
	go pr.loop()
	return pr
}

func (p *progress) add(m *client.Message) {
	p.msgs.Add(1)
	p.bytes.Add(int64(len(m.Payload)))
	p.last.Store(m.PublishTime.UnixNano())
}

func (p *progress) loop() {
	defer p.wg.Done()
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			fmt.Fprintf(p.w, "\r%s\n", p.line(time.Now()))
			return
		case now := <-t.C:
			fmt.Fprintf(p.w, "\r%s", p.line(now))
		}
	}
}

// stop draws the final line and waits for the drawing goroutine.
func (p *progress) stop() {
	p.once.Do(func() {
		close(p.quit)
		p.wg.Wait()
	})
}

// line renders the bar as of now.
func (p *progress) line(now time.Time) string {
	n, b := p.msgs.Load(), p.bytes.Load()
	elapsed := now.Sub(p.start)
	var rate float64
	if elapsed > 0 {
		rate = float64(n) / elapsed.Seconds()
	}
	s := fmt.Sprintf("%d msgs  %s  %.0f msg/s", n, humanBytes(b), rate)
	span := p.to.Sub(p.from)
	last := p.last.Load()
	if span <= 0 || last == 0 {
		return s + strings.Repeat(" ", 8)
	}
	f := min(1, max(0, float64(time.Unix(0, last).Sub(p.from))/float64(span)))
	const width = 20
	filled := int(f * width)
	bar := strings.Repeat("#", filled) + strings.Repeat(".", width-filled)
	eta := "?"
	if f > 0 {
		eta = (time.Duration(float64(elapsed) * (1 - f) / f)).Round(time.Second).String()
	}
	return fmt.Sprintf("%s  [%s] %3.0f%%  ETA %s    ", s, bar, f*100, eta)
}

// humanBytes renders n bytes with a binary unit.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
