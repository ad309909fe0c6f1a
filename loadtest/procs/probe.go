package procs

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// probeEvery is the polling interval of the readiness probes.
const probeEvery = 50 * time.Millisecond

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("procs: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitHTTP polls url until it answers 200 or ctx ends.
func WaitHTTP(ctx context.Context, url string) error {
	client := &http.Client{Timeout: time.Second}
	return poll(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}, url)
}

// WaitTCP polls addr until it accepts a connection or ctx ends.
func WaitTCP(ctx context.Context, addr string) error {
	return poll(ctx, func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}, addr)
}

func poll(ctx context.Context, try func() error, what string) error {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		err := try()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("procs: %s not ready: %w (last error: %v)", what, ctx.Err(), err)
		case <-t.C:
		}
	}
}
